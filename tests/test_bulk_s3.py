"""Bulk results on an S3-compatible bucket: a real HTTP endpoint (moto in server mode, started
here), reached through django-storages and boto3 exactly as a bucket would be.

In the test process: tampered and swapped parts refused, the download streamed from the
bucket, retention purge, key rotation and job deletion on the bucket. Then the platform as
separate processes (gunicorn and real celery workers, selected with ``BULK_STORAGE=s3`` in their
environment): a job end to end, and a worker SIGKILLed mid-job with every record exactly once.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from datetime import timedelta

import botocore.response
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.utils import timezone

from bulk import services, storage
from bulk.models import BulkJob, BulkPart
from conftest import SA_CONFIGURATION, completed_bulk_job, element_client_for, make_tenant
from tests.live_platform import LivePlatform
from tests.s3_server import DUMMY_CREDENTIALS, MotoS3Server
from tests.test_bulk_crash import kill_mid_job_then_finish_it
from tests.test_bulk_live import FAST_BULK_ENV, Api, expected_activities
from tests.test_result_binding import download, read_stream

DAYS = ("2024-03-01", "2024-03-01")


@pytest.fixture(scope="module")
def bucket():
    server = MotoS3Server().start()
    yield server
    server.stop()


@pytest.fixture
def on_bucket(bucket, settings, monkeypatch):
    """The test process's result storage is the bucket, configured as settings.py does for
    BULK_STORAGE=s3 (credentials from the environment, the way boto3 finds them)."""
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {
        **settings.STORAGES,
        "bulk": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.bucket,
                "endpoint_url": bucket.endpoint_url,
                "region_name": "us-east-1",
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": False,
            },
        },
    }
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    assert type(storage.result_storage()).__name__ == "S3Storage"
    return bucket


def part_key(job_id: int, seq: int = 1) -> str:
    return BulkPart.objects.get(job_id=job_id, seq=seq).name


@pytest.fixture
def jobs(on_bucket, sim):
    """Tenant A's profiles job (3 parts) and tenant B's events job (1 part), in the bucket."""
    sim.configure(profiles={"count": 2500}, events_per_day=300)
    a = element_client_for(make_tenant("Acme", "owner@acme.test"))
    b = element_client_for(make_tenant("Globex", "owner@globex.test"))
    job_a = completed_bulk_job(a, "select * from users")
    job_b = completed_bulk_job(b, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    assert len(on_bucket.keys(f"bulk/{job_a}/")) == 3
    assert len(on_bucket.keys(f"bulk/{job_b}/")) == 1
    return a, job_a, b, job_b


@pytest.mark.django_db
def test_a_result_in_the_bucket_downloads(jobs):
    a, job_a, _, _ = jobs
    received, error = read_stream(download(a, job_a, "users"))
    assert error is None
    assert len({json.loads(line)["$distinct_id"] for line in received.splitlines()}) == 2500


@pytest.mark.django_db
def test_tampered_and_swapped_parts_in_the_bucket_are_refused(jobs, on_bucket, caplog):
    a, job_a, _, job_b = jobs
    first, second = part_key(job_a, 1), part_key(job_a, 2)
    one, two = on_bucket.get(first), on_bucket.get(second)
    on_bucket.put(first, two)
    on_bucket.put(second, one)
    assert download(a, job_a, "users").status_code == 409  # swapped within the job

    on_bucket.put(first, on_bucket.get(part_key(job_b)))
    assert download(a, job_a, "users").status_code == 409  # another job's part

    flipped = bytearray(one)
    flipped[100] ^= 0x01
    on_bucket.put(first, bytes(flipped))
    on_bucket.put(second, two)
    assert download(a, job_a, "users").status_code == 409  # a flipped byte
    assert any("refused" in r.getMessage() for r in caplog.records)

    on_bucket.put(first, one)
    received, error = read_stream(download(a, job_a, "users"))
    assert error is None and len(received.splitlines()) == 2500


@pytest.mark.django_db
def test_a_part_streams_from_the_bucket_in_chunks(on_bucket, monkeypatch):
    """An unencrypted part of several read chunks: the first chunk reaches the caller after one
    chunk was read from the object's body, not after the whole object."""
    data = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * 200) for i in range(20000))
    assert len(data) > 3 * storage.READ_CHUNK
    name = storage.write_part(
        storage.part_name(990001, 1, 1), data, encrypt=False, job_id=990001, seq=1
    )
    read = []
    original = botocore.response.StreamingBody.read

    def counting_read(self, amt=None):
        chunk = original(self, amt)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(botocore.response.StreamingBody, "read", counting_read)
    part = storage.StoredPart(job_id=990001, seq=1, name=name, encrypted=False)
    chunks = storage.part_chunks(part)
    first = next(chunks)
    assert len(first) <= storage.READ_CHUNK and sum(read) <= storage.READ_CHUNK
    assert first + b"".join(chunks) == data
    assert len(read) > 3
    storage.delete_job_files(990001)
    assert on_bucket.keys("bulk/990001/") == []


@pytest.mark.django_db
def test_retention_purge_and_job_deletion_delete_the_objects(
    jobs, on_bucket, django_capture_on_commit_callbacks
):
    _, job_a, _, job_b = jobs
    BulkJob.objects.filter(pk=job_a).update(completed_at=timezone.now() - timedelta(days=4))
    assert services.purge_results() == 1
    assert on_bucket.keys(f"bulk/{job_a}/") == []
    assert not BulkPart.objects.filter(job_id=job_a).exists()
    assert len(on_bucket.keys(f"bulk/{job_b}/")) == 1

    with django_capture_on_commit_callbacks(execute=True):
        BulkJob.objects.get(pk=job_b).delete()
    assert on_bucket.keys(f"bulk/{job_b}/") == []


@pytest.mark.django_db
def test_key_rotation_re_encrypts_the_parts_in_the_bucket(jobs, on_bucket, settings):
    a, job_a, _, job_b = jobs
    before = {key: on_bucket.get(key) for key in on_bucket.keys(f"bulk/{job_a}/")}
    old_keys = list(settings.PLATFORM["CREDENTIALS_KEYS"])
    new_key = Fernet.generate_key().decode()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key, *old_keys]}
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "4 bulk result part(s)" in out.getvalue()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key]}

    after = on_bucket.keys(f"bulk/{job_a}/")
    assert len(after) == 3 and not set(after) & set(before)  # new objects, the old ones gone
    new_key_id = storage._part_keys((new_key,))[0]
    assert all(on_bucket.get(key)[4:12] == new_key_id for key in after)
    received, error = read_stream(download(a, job_a, "users"))
    assert error is None and len(received.splitlines()) == 2500
    # Still bound: job B's part over job A's is refused.
    on_bucket.put(part_key(job_a), on_bucket.get(part_key(job_b)))
    assert download(a, job_a, "users").status_code == 409


# --- the platform as processes on the bucket ---------------------------------------------------


@pytest.fixture(scope="module")
def live(simulator, bucket):
    env = {**FAST_BULK_ENV, **bucket.env(), "BULK_EXPORT_PAGE_RECORDS": "2000"}
    with LivePlatform(mixpanel_base_url=simulator.base_url, extra_env=env) as platform:
        yield platform


@pytest.fixture
def api(live, sim):
    return Api(live, live.create_instance(SA_CONFIGURATION)["token"])


@pytest.mark.integration
def test_a_job_end_to_end_on_the_bucket_with_a_real_worker(live, api, sim, bucket):
    sim.configure(events_per_day=3000)
    worker = live.start_worker(concurrency=1)
    days = ("2024-01-01", "2024-01-12")
    job = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    done = api.wait(job, timeout=120)
    assert done["status"] == "COMPLETED", (done, worker.log_text()[-3000:])
    keys = sorted(bucket.keys(f"bulk/{job}/"))
    assert len(keys) == 24  # pages of 2000 records, a page within one day
    expected = expected_activities(*days, 3000)
    assert api.ndjson(job, "activities") == expected

    # Streamed from the bucket, not buffered whole: once the first bytes have arrived, the
    # second half of the parts is deleted from the bucket, and the download breaks off there.
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=120)
    conn.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # no deep read-ahead
    headers = {"Authorization": api.auth, "Accept": "application/x-ndjson"}
    conn.request("GET", f"/elements/api-v2/bulk/{job}/activities", headers=headers)
    response = conn.getresponse()
    assert response.status == 200
    received = response.read(1000)
    for key in keys[12:]:
        bucket.client().delete_object(Bucket=bucket.bucket, Key=key)
    with pytest.raises(http.client.IncompleteRead) as broken:
        response.read()
    conn.close()
    received += broken.value.partial
    assert 0 < len(received) < len(expected)
    assert expected.startswith(received)
    worker.stop()


@pytest.mark.integration
def test_sigkill_mid_job_on_the_bucket_then_another_worker_finishes_it_exactly_once(
    live, api, sim, bucket
):
    job = kill_mid_job_then_finish_it(live, api, sim)
    # 8 days of 6000 events in pages of 2000: 24 parts, and nothing else of the job is left in
    # the bucket (the part the killed worker wrote but never committed was deleted).
    assert len(bucket.keys(f"bulk/{job}/")) == 24


@pytest.mark.django_db
def test_a_key_prefix_keeps_the_parts_under_it(on_bucket, settings):
    """BULK_S3_PREFIX: parts are written, listed and deleted under the prefix only."""
    bulk = settings.STORAGES["bulk"]
    settings.STORAGES = {
        **settings.STORAGES,
        "bulk": {**bulk, "OPTIONS": {**bulk["OPTIONS"], "location": "platform/results"}},
    }
    on_bucket.put("bulk/990002/not-ours.ndjson", b"another application's object")
    name = storage.write_part(
        storage.part_name(990002, 1, 1), b'{"n": 1}\n', encrypt=True, job_id=990002, seq=1
    )
    assert on_bucket.keys("platform/results/bulk/990002/") == [f"platform/results/{name}"]
    assert storage.job_files(990002) == [name]
    part = storage.StoredPart(job_id=990002, seq=1, name=name, encrypted=True)
    assert list(storage.part_lines(part)) == [b'{"n": 1}']
    assert storage.delete_job_files(990002) == 1
    assert on_bucket.keys("platform/results/") == []
    assert on_bucket.keys("bulk/990002/") == ["bulk/990002/not-ours.ndjson"]
    on_bucket.client().delete_object(Bucket=on_bucket.bucket, Key="bulk/990002/not-ours.ndjson")
