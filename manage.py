#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A setting refused (production checks): the reason, not a traceback that reads as a
        # crash. --traceback shows where it was raised.
        if "--traceback" in sys.argv:
            raise
        sys.exit(f"manage.py: {exc}")


if __name__ == "__main__":
    main()
