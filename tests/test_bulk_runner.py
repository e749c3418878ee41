"""The bulk job runner, sweeper, retention, formats and callbacks, in-process with fakes.

A fake ``BulkSource`` stands in for the vendor, so each test can crash, cancel, rate-limit or
steal the lease exactly between two steps of the runner.
"""

import base64
import csv
import hashlib
import hmac
import io
import json
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from bulk import callbacks, formats, runner, services, storage
from bulk.models import BulkJob, BulkJobError, BulkPart
from conftest import SA_CONFIGURATION, Crash, dying_at_part, make_instance
from elements.framework.bulk import BulkQueryError, Page
from elements.framework.definition import SIGNATURE_KEY_FIELD
from elements.framework.vendor import VendorError, VendorUnreachable
from tests.test_bulk_live import Receiver

pytestmark = pytest.mark.django_db
Status = BulkJob.Status


def record(page: int, i: int) -> dict:
    return {"id": f"{page}-{i}", "n": i, "nested": {"page": page, "tags": ["a", i]}}


class FakeSource:
    """``pages`` pages of ``size`` records; checkpoint = the next page. ``hooks[i]`` runs before
    page ``i`` is yielded (it may raise, cancel the job, ...)."""

    def __init__(self, pages=4, size=3, hooks=None, failed_on=None, keys_only=False, ndjson=False):
        self.keys_only = keys_only or ndjson
        self.ndjson = ndjson  # the lines as NDJSON pieces of two records, in place of raw
        self.n_pages = pages
        self.size = size
        self.hooks = hooks or {}
        self.failed_on = failed_on or {}
        self.started_from = []

    def pages(self, call, query, checkpoint):
        start = checkpoint["page"] if checkpoint else 0
        self.started_from.append(start)
        for p in range(start, self.n_pages):
            hook = self.hooks.get(p)
            if hook is not None:
                hook()
            records = [record(p, i) for i in range(self.size)]
            raw = [json.dumps(r, separators=(",", ":")).encode() for r in records]
            ndjson = [
                b"".join(line + b"\n" for line in raw[i : i + 2]) for i in range(0, len(raw), 2)
            ]
            yield Page(
                records=[] if self.keys_only else records,
                keys=["id", "n", "nested"] if self.keys_only else None,
                raw=[] if self.ndjson else raw,
                ndjson=ndjson if self.ndjson else None,
                ndjson_records=len(raw) if self.ndjson else 0,
                failed=[
                    {"position": f"{p}#{k}", "error": "unreadable record", "raw": "{oops"}
                    for k in range(self.failed_on.get(p, 0))
                ],
                checkpoint={"page": p + 1},
                progress=(p + 1, self.n_pages),
            )

    def expected(self):
        return [record(p, i) for p in range(self.n_pages) for i in range(self.size)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """What would have been sent to the broker."""
    sent = {"jobs": [], "callbacks": []}
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: sent["jobs"].append(job_id))
    monkeypatch.setattr(
        services,
        "enqueue_callback",
        lambda job_id, countdown=None: sent["callbacks"].append(job_id),
    )
    return sent


@pytest.fixture
def instance(tenant):
    return make_instance(
        tenant, name="bulk", configuration={**SA_CONFIGURATION, SIGNATURE_KEY_FIELD: "sig-key"}
    )[0]


def make_job(instance, q="select * from activities", **extra) -> BulkJob:
    return BulkJob.objects.create(
        instance=instance,
        user_id=instance.user_id,
        element_key="mixpanel",
        object_name="activities",
        query_text=q,
        queued_at=timezone.now(),
        **extra,
    )


def run(job, source, worker="w1", sleeps=None):
    """In the test's own transaction: no heartbeat or committer thread (their connections would
    not see it); test_pipelined_runs_with_threads covers those."""
    sleeps = [] if sleeps is None else sleeps
    return runner.run_job(
        job.pk, worker, source=source, sleep=sleeps.append, heartbeat=False, pipelined=False
    )


def result_records(job) -> list[dict]:
    return [
        json.loads(line)
        for line in b"".join(formats.ndjson_stream(job_parts(job))).split(b"\n")
        if line
    ]


def job_parts(job):
    from bulk.selectors import job_parts as parts

    return parts(job)


# --- running ---------------------------------------------------------------------------------


def test_a_job_completes_with_every_record_once(instance):
    job = make_job(instance)
    source = FakeSource(pages=4, size=3, failed_on={1: 2})
    assert run(job, source) == Status.COMPLETED
    job.refresh_from_db()
    assert job.status == Status.COMPLETED
    assert job.records_count == 12 and job.records_failed_count == 2
    assert job.parts_count == 4 and job.attempts == 1
    assert job.fields == ["id", "n", "nested"]
    assert (job.progress_done, job.progress_total) == (4, 4)
    assert result_records(job) == source.expected()
    errors = list(BulkJobError.objects.filter(job=job).values_list("position", flat=True))
    assert errors == ["1#0", "1#1"]
    assert job.started_at and job.completed_at and not job.worker_id


def test_result_parts_are_encrypted_at_rest(instance, media):
    job = make_job(instance)
    run(job, FakeSource(pages=1))
    part = BulkPart.objects.get(job=job)
    raw = (media / part.name).read_bytes()
    assert part.encrypted and b'"nested"' not in raw
    assert b"".join(storage.part_chunks(storage.StoredPart.of(part))).count(b"\n") == 3


def test_key_rotation_re_encrypts_result_parts_so_the_old_key_can_go(instance, media, settings):
    job = make_job(instance)
    run(job, FakeSource(pages=3))
    old_names = [p.name for p in BulkPart.objects.filter(job=job)]
    old_keys = list(settings.PLATFORM["CREDENTIALS_KEYS"])
    new_key = Fernet.generate_key().decode()

    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key, *old_keys]}
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "3 bulk result part(s)" in out.getvalue()
    call_command("rotate_credentials_key", stdout=out)  # again: nothing left to do
    assert "0 bulk result part(s)" in out.getvalue()

    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key]}
    assert result_records(job) == FakeSource(pages=3).expected()
    assert not any((media / name).exists() for name in old_names)  # no copy under the old key


def test_parts_no_key_reads_are_reported_and_left_in_place(instance, media, settings):
    job = make_job(instance)
    run(job, FakeSource(pages=2))
    part = BulkPart.objects.filter(job=job).first()
    (media / part.name).write_bytes(storage.MAGIC + b"\0" * 40)  # a key nobody has
    settings.PLATFORM = {
        **settings.PLATFORM,
        "CREDENTIALS_KEYS": [
            Fernet.generate_key().decode(),
            *settings.PLATFORM["CREDENTIALS_KEYS"],
        ],
    }
    with pytest.raises(CommandError, match="1 bulk result part"):
        call_command("rotate_credentials_key", stdout=io.StringIO())
    assert (media / part.name).exists()
    assert BulkPart.objects.get(pk=part.pk).name == part.name


def test_results_stay_plain_when_encryption_is_off(instance, media, settings):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_ENCRYPT_RESULTS": False}
    job = make_job(instance)
    run(job, FakeSource(pages=2))
    part = BulkPart.objects.filter(job=job).first()
    assert not part.encrypted and b'"nested"' in (media / part.name).read_bytes()
    assert len(result_records(job)) == 6


def test_a_crash_between_part_and_commit_resumes_without_duplicates(instance, media):
    """The part of page 2 is written, then the worker dies before its transaction commits."""
    job = make_job(instance)
    source = FakeSource(pages=5, size=4)
    with dying_at_part(3), pytest.raises(Crash):
        run(job, source)
    job.refresh_from_db()
    assert job.status == Status.RUNNING and job.records_count == 8 and job.parts_count == 2
    assert len(storage.job_files(job.pk)) == 3  # one part nobody committed

    # A second worker cannot take it while the lease is fresh...
    assert run(job, source, worker="w2") == "not claimed"
    # ... and can once the heartbeat is older than the lease.
    BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run(job, source, worker="w2") == Status.COMPLETED
    job.refresh_from_db()
    assert source.started_from == [0, 2]
    assert job.records_count == 20 and job.attempts == 2
    assert result_records(job) == source.expected()
    assert len(storage.job_files(job.pk)) == 5  # the orphan is gone


def test_a_crash_in_the_source_resumes_from_the_committed_checkpoint(instance):
    job = make_job(instance)
    state = {"crashed": False}

    def crash_once():
        if not state["crashed"]:
            state["crashed"] = True
            raise Crash()

    source = FakeSource(pages=4, hooks={3: crash_once})
    with pytest.raises(Crash):
        run(job, source)
    BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run(job, source, worker="w2") == Status.COMPLETED
    assert source.started_from == [0, 3]
    assert result_records(BulkJob.objects.get(pk=job.pk)) == source.expected()


def test_a_crash_after_the_last_page_was_committed_completes_with_nothing_more(
    instance, monkeypatch
):
    """Killed between the last page's commit and the end of the job: the next worker resumes
    from a checkpoint past the end, reads nothing, and completes."""
    job = make_job(instance)
    finish = runner.JobRunner.finish

    def crash_at_the_end(self, status, message, **kwargs):
        if status == Status.COMPLETED and self.worker_id == "w1":
            raise Crash()
        return finish(self, status, message, **kwargs)

    monkeypatch.setattr(runner.JobRunner, "finish", crash_at_the_end)
    source = FakeSource(pages=4)
    with pytest.raises(Crash):
        run(job, source)
    assert BulkJob.objects.get(pk=job.pk).records_count == 12
    BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run(job, source, worker="w2") == Status.COMPLETED
    assert source.started_from == [0, 4]
    assert result_records(BulkJob.objects.get(pk=job.pk)) == source.expected()


def test_cancel_between_pages_stops_the_runner(instance, media):
    job = make_job(instance, callback_url="https://example.com/hook")
    source = FakeSource(pages=6, hooks={3: lambda: services.job_cancel(job)})
    assert run(job, source) == "stopped"
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and job.status_message == "Cancelled by the user."
    # Page 3 was read but could not be committed: its part is deleted, the count stays.
    assert job.records_count == 9 and job.parts_count == 3
    assert len(storage.job_files(job.pk)) == 3
    assert job.callback_status == BulkJob.Callback.PENDING


def test_a_worker_that_lost_its_lease_stops(instance):
    job = make_job(instance)

    def steal():
        BulkJob.objects.filter(pk=job.pk).update(worker_id="somebody-else")

    assert run(job, FakeSource(pages=4, hooks={2: steal})) == "stopped"
    job.refresh_from_db()
    assert job.status == Status.RUNNING and job.worker_id == "somebody-else"
    assert job.records_count == 6


def test_rate_limits_and_broken_streams_are_retried_from_the_checkpoint(instance):
    job = make_job(instance)
    failures = [
        VendorError("limited", status_code=429, provider_status=429, headers={"Retry-After": "7"}),
        VendorUnreachable("The export stream broke off."),
    ]

    def fail():
        if failures:
            raise failures.pop(0)

    source = FakeSource(pages=4, hooks={2: fail})
    sleeps = []
    assert run(job, source, sleeps=sleeps) == Status.COMPLETED
    assert sleeps[0] == 7.0 and 0 < sleeps[1] < 10
    assert source.started_from == [0, 2, 2]
    assert result_records(BulkJob.objects.get(pk=job.pk)) == source.expected()


def test_a_vendor_refusal_ends_in_error_with_the_providers_message(instance):
    job = make_job(instance, callback_url="https://example.com/hook")

    def refuse():
        raise VendorError(
            "The vendor refused the call with HTTP 403.",
            status_code=403,
            provider_status=403,
            provider_message="Project access revoked",
        )

    assert run(job, FakeSource(pages=3, hooks={1: refuse})) == Status.ERROR
    job.refresh_from_db()
    assert job.status == Status.ERROR
    assert "Project access revoked" in job.status_message and "403" in job.status_message
    assert job.records_count == 3 and job.callback_status == BulkJob.Callback.PENDING


def test_retries_are_bounded(instance):
    job = make_job(instance)

    def down():
        raise VendorError(
            "The vendor failed with HTTP 503.",
            status_code=502,
            provider_status=503,
            provider_message="simulated failure",
        )

    sleeps = []
    assert run(job, FakeSource(pages=2, hooks={0: down}), sleeps=sleeps) == Status.ERROR
    job.refresh_from_db()
    assert len(sleeps) == 5 and sleeps == sorted(sleeps)
    assert job.status_message.startswith("Gave up after 5 retries")
    assert "simulated failure" in job.status_message


def test_a_query_the_source_rejects_ends_in_error(instance):
    def bad():
        raise BulkQueryError("service-accounts cannot be filtered.")

    job = make_job(instance)
    assert run(job, FakeSource(hooks={0: bad})) == Status.ERROR
    assert "cannot be filtered" in BulkJob.objects.get(pk=job.pk).status_message


def test_limit_and_field_selection(instance):
    job = make_job(instance, q="select id, nested.page from activities limit 5")
    source = FakeSource(pages=4, size=3)
    assert run(job, source) == Status.COMPLETED
    job.refresh_from_db()
    assert job.records_count == 5 and job.fields == ["id", "nested"]
    assert result_records(job) == [
        {"id": r["id"], "nested": {"page": r["nested"]["page"]}} for r in source.expected()[:5]
    ]


def test_a_source_may_give_raw_lines_and_keys_instead_of_records(instance):
    job = make_job(instance)
    source = FakeSource(pages=3, size=2, keys_only=True)
    assert run(job, source) == Status.COMPLETED
    job.refresh_from_db()
    assert job.records_count == 6 and job.fields == ["id", "n", "nested"]
    assert result_records(job) == source.expected()
    projected = make_job(instance, q="select nested.tags from activities limit 3")
    assert run(projected, FakeSource(pages=3, size=2, keys_only=True)) == Status.COMPLETED
    assert result_records(BulkJob.objects.get(pk=projected.pk)) == [
        {"nested": {"tags": r["nested"]["tags"]}} for r in source.expected()[:3]
    ]


def test_a_source_may_give_ndjson_pieces_which_are_stored_as_they_are(instance):
    job = make_job(instance)
    source = FakeSource(pages=3, size=5, ndjson=True)
    assert run(job, source) == Status.COMPLETED
    job.refresh_from_db()
    assert (job.records_count, job.parts_count) == (15, 3)
    assert job.fields == ["id", "n", "nested"]
    assert result_records(job) == source.expected()
    # The limit and the projection still see single records.
    limited = make_job(instance, q="select nested.tags from activities limit 7")
    assert run(limited, FakeSource(pages=3, size=5, ndjson=True)) == Status.COMPLETED
    limited.refresh_from_db()
    assert limited.records_count == 7
    assert result_records(limited) == [
        {"nested": {"tags": r["nested"]["tags"]}} for r in source.expected()[:7]
    ]
    whole = make_job(instance, q="select * from activities limit 6")
    assert run(whole, FakeSource(pages=3, size=5, ndjson=True)) == Status.COMPLETED
    assert result_records(BulkJob.objects.get(pk=whole.pk)) == source.expected()[:6]


def test_claims_are_exclusive_and_attempts_are_bounded(instance, settings):
    job = make_job(instance)
    assert runner.claim(job.pk, "a") is not None
    assert runner.claim(job.pk, "b") is None
    BulkJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1), attempts=10
    )
    assert run(job, FakeSource()) == Status.ERROR
    assert "Gave up after 10 attempts" in BulkJob.objects.get(pk=job.pk).status_message
    # An ended job is never claimed again.
    assert runner.claim(job.pk, "c") is None


# --- sweeper and retention ---------------------------------------------------------------------


def test_the_sweeper_requeues_dead_and_lost_jobs_once_per_lease(instance, queued):
    now = timezone.now()
    dead = make_job(instance, status=Status.RUNNING, heartbeat_at=now - timedelta(minutes=5))
    BulkJob.objects.filter(pk=dead.pk).update(queued_at=now - timedelta(minutes=6))
    alive = make_job(instance, status=Status.RUNNING, heartbeat_at=now)
    lost = make_job(instance)
    BulkJob.objects.filter(pk=lost.pk).update(queued_at=now - timedelta(minutes=10))
    fresh = make_job(instance)
    done = make_job(instance, status=Status.COMPLETED, completed_at=now)
    assert services.sweep() == {"stale": 1, "unclaimed": 1, "callbacks": 0}
    assert sorted(queued["jobs"]) == sorted([dead.pk, lost.pk])
    # Sweeping again right away queues nothing twice.
    assert services.sweep() == {"stale": 0, "unclaimed": 0, "callbacks": 0}
    assert {alive.pk, fresh.pk, done.pk}.isdisjoint(queued["jobs"])


def test_the_sweeper_requeues_overdue_callbacks(instance, queued):
    now = timezone.now()
    job = make_job(
        instance,
        status=Status.COMPLETED,
        callback_url="https://example.com/x",
        callback_status=BulkJob.Callback.PENDING,
        callback_next_at=now - timedelta(minutes=5),
    )
    stuck = make_job(
        instance,
        status=Status.COMPLETED,
        callback_url="https://example.com/x",
        callback_status=BulkJob.Callback.SENDING,
        callback_next_at=now - timedelta(hours=1),
    )
    assert services.sweep()["callbacks"] == 2
    assert sorted(queued["callbacks"]) == sorted([job.pk, stuck.pk])
    assert BulkJob.objects.get(pk=stuck.pk).callback_status == BulkJob.Callback.PENDING


def test_results_are_deleted_after_the_retention_period(instance):
    old, recent = make_job(instance), make_job(instance)
    run(old, FakeSource(pages=2))
    run(recent, FakeSource(pages=2))
    BulkJob.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=4))
    assert services.purge_results() == 1
    old.refresh_from_db()
    assert old.results_deleted_at is not None and storage.job_files(old.pk) == []
    assert not BulkPart.objects.filter(job=old).exists()
    assert len(storage.job_files(recent.pk)) == 2
    assert services.purge_results() == 0


def test_deleting_a_job_deletes_its_files(instance, django_capture_on_commit_callbacks):
    job = make_job(instance)
    run(job, FakeSource(pages=2))
    with django_capture_on_commit_callbacks(execute=True):
        job.delete()
    assert storage.job_files(job.pk) == []


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept, media",
    [
        (None, formats.JSON),
        ("", formats.JSON),
        ("*/*", formats.JSON),
        ("application/json", formats.JSON),
        ("application/x-ndjson", formats.NDJSON),
        ("application/jsonl", formats.JSONL),
        ("text/csv", formats.CSV),
        ("text/*", formats.CSV),
        ("text/csv;q=0.5, application/x-ndjson", formats.NDJSON),
        ("application/xml, */*;q=0.1", formats.JSON),
        ("text/html, application/xhtml+xml", None),
        ("application/json;q=0", None),
        ("application/xml", None),
    ],
)
def test_accept_negotiation(accept, media):
    assert formats.negotiate(accept) == media


def test_json_array_and_csv_streams(instance):
    job = make_job(instance)
    source = FakeSource(pages=3, size=2)
    run(job, source)
    job.refresh_from_db()
    parts = job_parts(job)
    assert json.loads(b"".join(formats.json_array_stream(parts))) == source.expected()
    assert json.loads(b"".join(formats.json_array_stream([]))) == []
    rows = list(csv.reader(io.StringIO(b"".join(formats.csv_stream(parts, job.fields)).decode())))
    assert rows[0] == ["id", "n", "nested"]
    decoded = [{"id": r[0], "n": int(r[1]), "nested": json.loads(r[2])} for r in rows[1:]]
    assert decoded == source.expected()
    assert formats.cell(None) == "" and formats.cell(True) == "true" and formats.cell(1.5) == "1.5"


# --- callbacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "ftp://example.com/",
        "javascript:alert(1)",
        "http:///nohost",
        "http://user:pw@example.com/",
        "http://does-not-exist.invalid/",
        "http://example.com:99999/",
        "",
    ],
)
def test_callback_urls_that_are_refused(url):
    with pytest.raises(callbacks.CallbackRefused):
        callbacks.check_callback_url(url, allow_private=False)


def test_private_callbacks_are_allowed_by_the_setting():
    target = callbacks.check_callback_url("http://127.0.0.1:8123/h?x=1", allow_private=True)
    assert (target.address, target.port, target.path) == ("127.0.0.1", 8123, "/h?x=1")
    with pytest.raises(callbacks.CallbackRefused):
        callbacks.check_callback_url("gopher://127.0.0.1/", allow_private=True)


def callback_receiver(statuses=(200,)) -> Receiver:
    return Receiver(statuses=statuses, path="/hooks/bulk?src=test")


def test_callback_delivery_is_signed_retried_and_settled_once(instance, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    receiver = callback_receiver(statuses=(503, 200))
    try:
        job = make_job(instance, callback_url=receiver.url)
        run(job, FakeSource(pages=1))
        assert callbacks.deliver(job.pk)[0] == "retry"
        assert callbacks.deliver(job.pk) == ("not claimed", None)  # not due yet
        BulkJob.objects.filter(pk=job.pk).update(callback_next_at=timezone.now())
        assert callbacks.deliver(job.pk) == ("delivered", None)
        assert callbacks.deliver(job.pk) == ("not claimed", None)  # never twice
    finally:
        receiver.close()
    assert len(receiver.received) == 2
    ((headers, body),) = receiver.delivered()
    expected = base64.b64encode(hmac.new(b"sig-key", body, hashlib.sha256).digest()).decode()
    assert headers["Elements-Webhook-Signature"] == f"sha256={expected}"
    status = json.loads(body)
    assert status["id"] == job.pk and status["status"] == "COMPLETED"
    assert status["recordsCount"] == 3
    job.refresh_from_db()
    assert job.callback_status == BulkJob.Callback.DELIVERED and job.callback_attempts == 2


def test_callbacks_to_private_addresses_are_refused_at_send_time(instance, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": False}
    job = make_job(
        instance,
        status=Status.COMPLETED,
        callback_url="http://127.0.0.1:9/hook",
        callback_status=BulkJob.Callback.PENDING,
        callback_next_at=timezone.now(),
    )
    assert callbacks.deliver(job.pk) == ("refused", None)
    job.refresh_from_db()
    assert job.callback_status == BulkJob.Callback.FAILED
    assert "private" in job.callback_last_error


def test_an_unsigned_callback_without_a_key(tenant, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    plain, _ = make_instance(tenant, name="unsigned")
    receiver = callback_receiver()
    try:
        job = make_job(plain, callback_url=receiver.url)
        run(job, FakeSource(pages=1))
        assert callbacks.deliver(job.pk)[0] == "delivered"
    finally:
        receiver.close()
    ((headers, _),) = receiver.delivered()
    assert "Elements-Webhook-Signature" not in headers


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_jobs_with_progress_and_downloads(
    admin_client, instance, queued, django_capture_on_commit_callbacks
):
    done = make_job(instance)
    run(done, FakeSource(pages=4, size=3))
    waiting = make_job(instance)
    page = admin_client.get("/admin/bulk/bulkjob/").content.decode()
    assert "12 records · 4/4 days" in page and "COMPLETED" in page and "CREATED" in page
    assert f"/admin/bulk/bulkjob/{done.pk}/download/" in page
    assert admin_client.get(f"/admin/bulk/bulkjob/{done.pk}/change/").status_code == 200
    response = admin_client.get(f"/admin/bulk/bulkjob/{done.pk}/download/")
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).splitlines()
    assert [json.loads(x) for x in lines] == FakeSource(pages=4, size=3).expected()
    assert admin_client.get(f"/admin/bulk/bulkjob/{waiting.pk}/download/").status_code == 404

    # Cancel the waiting one, then retry it: it is queued again.
    for action in ("cancel_jobs", "retry_jobs"):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                "/admin/bulk/bulkjob/",
                {"action": action, "_selected_action": [waiting.pk, done.pk]},
                follow=True,
            )
        assert response.status_code == 200
    waiting.refresh_from_db()
    assert waiting.status == Status.CREATED and queued["jobs"] == [waiting.pk]
    assert BulkJob.objects.get(pk=done.pk).status == Status.COMPLETED
    assert admin_client.get("/admin/bulk/bulkjob/add/").status_code == 403


def test_the_sweep_command(instance, queued):
    from django.core.management import call_command

    lost = make_job(instance)
    BulkJob.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    out = io.StringIO()
    call_command("bulk_sweep", "--purge", stdout=out)
    assert json.loads(out.getvalue()) == {"stale": 0, "unclaimed": 1, "callbacks": 0, "purged": 0}
    assert queued["jobs"] == [lost.pk]


# --- the threaded runner (heartbeat and committer threads, their own connections) --------------


@pytest.mark.django_db(transaction=True)
def test_pipelined_runs_with_threads(tenant, settings):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_LEASE_SECONDS": 2.0}
    instance, _ = make_instance(tenant, name="threads")

    def threaded(job, source, worker="t1"):
        return runner.run_job(job.pk, worker, source=source, sleep=lambda s: None)

    # Every record once, in order.
    job = make_job(instance)
    source = FakeSource(pages=30, size=50, failed_on={7: 1})
    assert threaded(job, source) == Status.COMPLETED
    job.refresh_from_db()
    assert (job.records_count, job.records_failed_count, job.parts_count) == (1500, 1, 30)
    assert result_records(job) == source.expected()

    # The limit: nothing is committed after the page that reaches it.
    limited = make_job(instance, q="select * from activities limit 120")
    assert threaded(limited, FakeSource(pages=30, size=50)) == Status.COMPLETED
    limited.refresh_from_db()
    assert limited.records_count == 120 and limited.parts_count == 3

    # A crash resumes from the committed checkpoint, with no duplicates.
    crashed = make_job(instance)
    state = {"crashed": False}

    def crash_once():
        if not state["crashed"]:
            state["crashed"] = True
            raise Crash()

    source = FakeSource(pages=12, size=10, hooks={8: crash_once})
    with pytest.raises(Crash):
        threaded(crashed, source)
    BulkJob.objects.filter(pk=crashed.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert threaded(crashed, source, worker="t2") == Status.COMPLETED
    assert source.started_from == [0, 8]
    assert result_records(BulkJob.objects.get(pk=crashed.pk)) == source.expected()

    # Cancel between pages: the committer's next commit fails and the runner stops.
    cancelled = make_job(instance)
    source = FakeSource(pages=20, size=10, hooks={5: lambda: services.job_cancel(cancelled)})
    assert threaded(cancelled, source) == "stopped"
    cancelled.refresh_from_db()
    assert cancelled.status == Status.CANCELLED and cancelled.records_count in (30, 40, 50)
    assert len(storage.job_files(cancelled.pk)) == cancelled.parts_count

    # A heartbeat that finds the lease taken makes the runner stop.
    stolen = make_job(instance)

    def slow_steal():
        BulkJob.objects.filter(pk=stolen.pk).update(worker_id="thief")
        time.sleep(1.5)  # more than one heartbeat (lease / 4)

    assert threaded(stolen, FakeSource(pages=6, size=5, hooks={2: slow_steal})) == "stopped"
    assert BulkJob.objects.get(pk=stolen.pk).worker_id == "thief"
