"""The sweeper thread every Celery worker runs (bulk/worker.py), in-process. The real worker
processes, killed and restarted with and without beat, are in test_bulk_recovery.py."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from bulk import services
from bulk.models import BulkJob
from bulk.worker import BulkSweeper, SweeperThread, add_bulk_sweeper
from conftest import make_instance
from platform_core.celery import app
from tests.test_bulk_runner import make_job


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_thread_sweeps_at_once_then_every_interval(tenant, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "enqueue_job", queued.append)
    instance, _ = make_instance(tenant)
    long_ago = timezone.now() - timedelta(hours=1)
    dead = make_job(instance)
    BulkJob.objects.filter(pk=dead.pk).update(
        status=BulkJob.Status.RUNNING, heartbeat_at=long_ago, queued_at=long_ago
    )
    thread = SweeperThread(interval=0.2)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while dead.pk not in queued:
            assert time.monotonic() < deadline, "the first sweep did not re-queue the dead job"
            time.sleep(0.02)
        # A job whose worker dies later is picked up by a later sweep of the same thread.
        later = make_job(instance)
        BulkJob.objects.filter(pk=later.pk).update(
            status=BulkJob.Status.RUNNING, heartbeat_at=long_ago, queued_at=long_ago
        )
        while later.pk not in queued:
            assert time.monotonic() < deadline, "no later sweep re-queued the second job"
            time.sleep(0.02)
    finally:
        thread.stopped.set()
        thread.join(5)
    assert not thread.is_alive()
    assert queued.count(dead.pk) == 1  # re-queued once per lease, however often it sweeps


def test_every_worker_gets_the_sweeper_bootstep_and_beat_no_longer_sweeps():
    add_bulk_sweeper(sender=SimpleNamespace(app=app))
    assert BulkSweeper in app.steps["worker"]
    tasks = [entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()]
    assert "bulk.sweep" not in tasks and "bulk.purge_results" in tasks
