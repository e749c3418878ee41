from django.core.management.base import BaseCommand

from platform_core.keys import new_credentials_key


class Command(BaseCommand):
    help = (
        "Print a new random key for CREDENTIALS_KEYS (a Fernet key). Production: set "
        "CREDENTIALS_KEYS to it. Rotation: put it first in CREDENTIALS_KEYS, run "
        "rotate_credentials_key, then remove the old key. Nothing is stored."
    )

    def handle(self, *args, **options):
        self.stdout.write(new_credentials_key())
