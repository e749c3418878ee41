"""The Celery app (``celery -A platform_core worker``).

With no CELERY_BROKER_URL the broker is kombu's filesystem transport under ``var/broker``: it
needs no server, so a bare machine runs bulk jobs in a separate worker process. Production sets
``CELERY_BROKER_URL=redis://...``. Job state lives in database rows, never in a result backend.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

app = Celery("platform_core")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
