"""Jobs stop with their instance, in-process: a fake source stands in for the vendor and a
recording vendor client counts the calls the runner lets through (the live tests, with real
workers and the simulator, are in test_bulk_recovery.py).
"""

# ruff: noqa: F811 (the fixtures of test_bulk_runner are imported, and named as parameters)

import threading
import time

import pytest
from django.db import connection

from bulk import runner, services, storage
from bulk.models import BulkJob
from conftest import make_instance
from elements.framework.vendor import VendorError
from instances.models import Instance
from instances.services import instance_delete, instance_set_enabled
from tests.test_bulk_runner import (  # noqa: F401 (fixtures)
    FakeSource,
    instance,
    make_job,
    media,
    queued,
    run,
)

pytestmark = pytest.mark.django_db
Status = BulkJob.Status
Callback = BulkJob.Callback
HOOK = "https://example.com/hook"


def disable(instance):
    return lambda: instance_set_enabled(
        instance=Instance.objects.get(pk=instance.pk), enabled=False
    )


class RecordingVendor:
    def __init__(self):
        self.calls = []

    def stream_lines(self, *args, **kwargs):
        self.calls.append(args)

    def request(self, *args, **kwargs):
        self.calls.append(args)


class VendorCallingSource(FakeSource):
    """Calls the vendor once before each page, as the Mixpanel sources do (one export request a
    day, one engage request a page); ``hooks[i]`` runs just before that call."""

    def pages(self, call, query, checkpoint):
        start = checkpoint["page"] if checkpoint else 0
        for page in super().pages(call, query, checkpoint):
            call.vendor.stream_lines("GET", "data", f"/page/{start}")
            start += 1
            yield page


@pytest.fixture
def vendor(monkeypatch):
    recording = RecordingVendor()
    monkeypatch.setattr(
        runner, "vendor_client", lambda element, configuration, **options: recording
    )
    return recording


def test_a_job_whose_instance_was_disabled_before_the_claim_never_starts(
    instance, queued, django_capture_on_commit_callbacks
):
    job = make_job(instance, callback_url=HOOK)
    instance_set_enabled(instance=instance, enabled=False)
    source = FakeSource(pages=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert run(job, source) == Status.CANCELLED
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.status_message == services.INSTANCE_DISABLED
    assert job.completed_at and job.records_count == 0 and source.started_from == []
    # The instance is still there, with its signature key: the callback goes out as usual.
    assert job.callback_status == Callback.PENDING and queued["callbacks"] == [job.pk]


def test_disabling_the_instance_stops_the_job_before_the_next_vendor_call(instance, vendor):
    job = make_job(instance)
    source = VendorCallingSource(pages=6, hooks={2: disable(instance)})
    assert run(job, source) == Status.CANCELLED
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.status_message == services.INSTANCE_DISABLED
    # Pages 0 and 1 are kept; the vendor call for page 2 was never made.
    assert job.records_count == 6 and job.parts_count == 2
    assert [call[2] for call in vendor.calls] == ["/page/0", "/page/1"]


def test_disabling_the_instance_stops_the_job_at_the_next_page(instance):
    """A source that reads several pages from one vendor call (a day of the raw export) stops
    at the next page all the same: the page read meanwhile is not committed."""
    job = make_job(instance)
    assert run(job, FakeSource(pages=6, hooks={4: disable(instance)})) == Status.CANCELLED
    job.refresh_from_db()
    assert job.status_message == services.INSTANCE_DISABLED and job.records_count == 12
    assert len(storage.job_files(job.pk)) == 4


def rate_limited_once(seconds: int):
    failures = [VendorError("limited", status_code=429, headers={"Retry-After": str(seconds)})]

    def fail():
        if failures:
            raise failures.pop()

    return fail


def test_disabling_the_instance_ends_a_wait_between_retries(instance):
    job = make_job(instance)
    waited = []

    def sleep(seconds):
        waited.append(seconds)
        instance_set_enabled(instance=Instance.objects.get(pk=instance.pk), enabled=False)

    source = FakeSource(pages=4, hooks={1: rate_limited_once(120)})
    outcome = runner.run_job(
        job.pk, "w1", source=source, sleep=sleep, heartbeat=False, pipelined=False
    )
    assert outcome == Status.CANCELLED and waited == [120.0]
    job.refresh_from_db()
    assert job.status_message == services.INSTANCE_DISABLED and job.records_count == 3


@pytest.mark.django_db(transaction=True)
def test_with_threads_a_long_wait_ends_within_a_second_of_the_disable(tenant):
    instance, _ = make_instance(tenant, name="threads")
    job = make_job(instance)
    source = FakeSource(pages=4, hooks={1: rate_limited_once(300)})

    def disable_then_close():
        try:
            disable(instance)()
        finally:
            connection.close()  # this thread's own

    timer = threading.Timer(0.5, disable_then_close)
    timer.start()
    started = time.monotonic()
    try:
        assert runner.run_job(job.pk, "t1", source=source) == Status.CANCELLED
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10  # not the 300 s the vendor asked for
    job.refresh_from_db()
    assert job.status_message == services.INSTANCE_DISABLED and job.records_count == 3


def test_deleting_the_instance_stops_the_job_and_keeps_its_row(
    instance, vendor, queued, django_capture_on_commit_callbacks
):
    job = make_job(instance, callback_url=HOOK)
    deleted = lambda: instance_delete(instance=Instance.objects.get(pk=instance.pk))  # noqa: E731
    source = VendorCallingSource(pages=6, hooks={3: deleted})
    # The deletion itself ended the job (services.jobs_stop_for_deleted_instance), so the
    # runner finds it no longer RUNNING and just stops.
    with django_capture_on_commit_callbacks(execute=True):
        assert run(job, source) == "stopped"
    assert not Instance.objects.filter(pk=instance.pk).exists()
    job.refresh_from_db()
    assert job.instance_id is None and job.user_id == instance.user_id
    assert job.status == Status.CANCELLED and job.status_message == services.INSTANCE_DELETED
    assert job.records_count == 9 and len(vendor.calls) == 3
    # The callback would need the deleted instance's signature key: it is not sent.
    assert job.callback_status == Callback.FAILED
    assert job.callback_last_error == services.CALLBACK_NOT_SENT and queued["callbacks"] == []
    # Nobody can resume it.
    assert services.job_retry(job) is False


def test_a_running_job_whose_instance_row_vanished_ends_cancelled(
    instance, queued, django_capture_on_commit_callbacks
):
    """The runner's own check, for a deletion that bypassed the model's signals."""
    job = make_job(instance, callback_url=HOOK)

    def vanish():
        BulkJob.objects.filter(pk=job.pk).update(instance=None)

    with django_capture_on_commit_callbacks(execute=True):
        assert run(job, FakeSource(pages=5, hooks={2: vanish})) == Status.CANCELLED
    job.refresh_from_db()
    assert job.status_message == services.INSTANCE_DELETED and job.records_count == 6
    assert job.callback_status == Callback.FAILED and queued["callbacks"] == []


def test_deleting_an_instance_gives_up_callbacks_not_yet_sent(instance, queued):
    finished = make_job(instance, callback_url=HOOK, status=Status.COMPLETED)
    BulkJob.objects.filter(pk=finished.pk).update(callback_status=Callback.PENDING)
    delivered = make_job(instance, callback_url=HOOK, status=Status.COMPLETED)
    BulkJob.objects.filter(pk=delivered.pk).update(callback_status=Callback.DELIVERED)
    waiting = make_job(instance, callback_url=HOOK)
    plain = make_job(instance)
    instance_delete(instance=instance)
    states = {
        job.pk: (job.status, job.status_message, job.callback_status)
        for job in BulkJob.objects.filter(pk__in=[finished.pk, delivered.pk, waiting.pk, plain.pk])
    }
    assert states == {
        finished.pk: (Status.COMPLETED, "", Callback.FAILED),
        delivered.pk: (Status.COMPLETED, "", Callback.DELIVERED),
        waiting.pk: (Status.CANCELLED, services.INSTANCE_DELETED, Callback.FAILED),
        plain.pk: (Status.CANCELLED, services.INSTANCE_DELETED, Callback.NONE),
    }


def test_a_callback_claimed_for_a_job_whose_instance_is_gone_is_given_up(instance):
    from django.utils import timezone

    from bulk import callbacks

    job = make_job(instance, callback_url=HOOK, status=Status.COMPLETED)
    # The state a delivery meets when the instance was deleted after the callback was queued but
    # before the deletion's receiver could settle it (the row's instance is already NULL).
    BulkJob.objects.filter(pk=job.pk).update(
        instance=None, callback_status=Callback.PENDING, callback_next_at=timezone.now()
    )
    assert callbacks.deliver(job.pk) == ("failed", None)
    job.refresh_from_db()
    assert (job.callback_status, job.callback_last_error) == (
        Callback.FAILED,
        services.CALLBACK_NOT_SENT,
    )


def test_retry_waits_for_the_instance_to_be_enabled(instance, queued):
    job = make_job(instance)
    instance_set_enabled(instance=instance, enabled=False)
    assert run(job, FakeSource(pages=2)) == Status.CANCELLED
    job.refresh_from_db()
    assert services.job_retry(job) is False
    instance_set_enabled(instance=instance, enabled=True)
    assert services.job_retry(job) is True
    assert run(job, FakeSource(pages=2)) == Status.COMPLETED


def test_the_admin_still_shows_a_job_whose_instance_was_deleted(admin_client, instance):
    job = make_job(instance)
    instance_delete(instance=instance)
    listing = admin_client.get("/admin/bulk/bulkjob/")
    assert listing.status_code == 200 and f">{job.pk}<" in listing.content.decode()
    page = admin_client.get(f"/admin/bulk/bulkjob/{job.pk}/change/")
    assert page.status_code == 200
    assert services.INSTANCE_DELETED in page.content.decode()


def test_deleting_the_user_still_deletes_their_instances_and_jobs(instance, media):
    job = make_job(instance)
    assert run(job, FakeSource(pages=2)) == Status.COMPLETED
    running = make_job(instance)
    instance.user.delete()
    assert not BulkJob.objects.filter(pk__in=[job.pk, running.pk]).exists()
    assert not Instance.objects.filter(pk=instance.pk).exists()
