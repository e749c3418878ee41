"""The platform's settings with the floor routes of ``bench/floor_urls.py`` in front."""

from platform_core.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
