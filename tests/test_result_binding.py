"""Result parts are bound to their job and position (AES-GCM associated data).

Two tenants each run a real job against the simulator; then the result storage is tampered
with the way anyone who can write it could: a part copied over another job's part, parts of one
job swapped, a byte flipped, a part of the earlier unbound format. The download API must refuse
each, log it (without secrets), and never emit a foreign record.
"""

import http.client
import io
import json
import logging
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from bulk import storage
from bulk.models import BulkPart
from conftest import SA_CONFIGURATION, completed_bulk_job, element_client_for, make_tenant
from tests.live_platform import LivePlatform

pytestmark = pytest.mark.django_db

BULK = "/elements/api-v2/bulk"
DAYS = ("2024-03-01", "2024-03-01")


@pytest.fixture(autouse=True)
def media(bulk_in_test_thread) -> Path:
    return bulk_in_test_thread


@pytest.fixture
def jobs(sim):
    """Tenant A's profiles job (3 parts) and tenant B's events job (1 part)."""
    sim.configure(profiles={"count": 2500}, events_per_day=300)
    a = element_client_for(make_tenant("Acme", "owner@acme.test"))
    b = element_client_for(make_tenant("Globex", "owner@globex.test"))
    job_a = completed_bulk_job(a, "select * from users")
    job_b = completed_bulk_job(b, "select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    assert BulkPart.objects.filter(job_id=job_a).count() == 3
    return a, job_a, b, job_b


def part_file(media: Path, job_id: int, seq: int = 1) -> Path:
    return media / BulkPart.objects.get(job_id=job_id, seq=seq).name


def download(client, job_id: int, object_name: str, accept="application/x-ndjson"):
    return client.get(f"{BULK}/{job_id}/{object_name}", HTTP_ACCEPT=accept)


def read_stream(response) -> tuple[bytes, Exception | None]:
    """What the client received before the stream ended, and why it ended early."""
    received = b""
    try:
        for chunk in response.streaming_content:
            received += chunk
    except Exception as exc:  # noqa: BLE001 - the abort is what is being tested
        return received, exc
    return received, None


def is_event(record: dict) -> bool:
    return "event" in record


def test_an_untouched_result_downloads(jobs):
    a, job_a, _, _ = jobs
    response = download(a, job_a, "users")
    received, error = read_stream(response)
    assert response.status_code == 200 and error is None
    records = [json.loads(line) for line in received.splitlines()]
    assert len(records) == 2500 and not any(is_event(r) for r in records)


@pytest.mark.parametrize("accept", ["application/x-ndjson", "application/json", "text/csv"])
def test_another_jobs_part_copied_over_the_first_part_is_refused(jobs, media, caplog, accept):
    a, job_a, _, job_b = jobs
    caplog.set_level(logging.INFO)
    part_file(media, job_a).write_bytes(part_file(media, job_b).read_bytes())

    response = download(a, job_a, "users", accept)
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["requestId"] and "integrity" in body["message"]
    assert "event" not in response.content.decode()
    refused = [r for r in caplog.records if r.name == "bulk.storage" and "refused" in r.message]
    assert refused and f"bulk job {job_a}: result part 1" in refused[0].getMessage()
    assert refused[0].levelno == logging.ERROR


def test_another_jobs_part_in_the_middle_aborts_the_stream(jobs, media, caplog):
    """The response has started when part 2 is reached: the stream breaks off before any byte
    of the foreign part, so the client sees an incomplete download, never job B's records."""
    a, job_a, _, job_b = jobs
    part_file(media, job_a, seq=2).write_bytes(part_file(media, job_b).read_bytes())
    for accept in ("application/x-ndjson", "application/json", "text/csv"):
        response = download(a, job_a, "users", accept)
        assert response.status_code == 200  # part 1 verified: the response started
        received, error = read_stream(response)
        assert isinstance(error, storage.PartRefused)
        assert b'"event"' not in received and b"Signed up" not in received
        assert received.count(b"$distinct_id") <= 1000  # at most part 1 went out
    assert any(f"bulk job {job_a}: result part 2" in r.getMessage() for r in caplog.records)


def test_parts_of_one_job_swapped_are_refused(jobs, media):
    a, job_a, _, _ = jobs
    first, second = part_file(media, job_a, 1), part_file(media, job_a, 2)
    one, two = first.read_bytes(), second.read_bytes()
    first.write_bytes(two)
    second.write_bytes(one)
    assert download(a, job_a, "users").status_code == 409


@pytest.mark.parametrize("where", ["header", "nonce", "ciphertext", "tag"])
def test_a_flipped_byte_is_refused(jobs, media, caplog, where):
    a, job_a, _, _ = jobs
    path = part_file(media, job_a)
    data = bytearray(path.read_bytes())
    position = {"header": 5, "nonce": 13, "ciphertext": 100, "tag": len(data) - 1}[where]
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    response = download(a, job_a, "users")
    assert response.status_code == 409
    assert any("refused" in r.getMessage() or "key" in r.getMessage() for r in caplog.records)


def test_a_truncated_or_missing_part_is_refused(jobs, media):
    a, job_a, _, _ = jobs
    path = part_file(media, job_a)
    path.write_bytes(path.read_bytes()[:20])
    assert download(a, job_a, "users").status_code == 409
    path.unlink()
    assert download(a, job_a, "users").status_code == 409


def test_a_part_of_the_unbound_legacy_format_is_refused(jobs, media, caplog):
    """The first format (EPB1) authenticated only its header: such a part could be replayed
    into any job, so it is refused, not read."""
    a, job_a, _, _ = jobs
    key_id, ciphers = storage._part_keys(tuple(storage.platform_settings.CREDENTIALS_KEYS))
    header = storage.LEGACY_MAGIC + key_id
    nonce = b"\0" * storage.NONCE_BYTES
    legacy = header + nonce + ciphers[key_id].encrypt(nonce, b'{"$distinct_id": "x"}\n', header)
    part_file(media, job_a).write_bytes(legacy)
    response = download(a, job_a, "users")
    assert response.status_code == 409
    assert "earlier version" in response.json()["message"]
    assert any("unbound format" in r.getMessage() for r in caplog.records)


def test_nothing_secret_is_logged(jobs, media, caplog, settings):
    a, job_a, _, job_b = jobs
    caplog.set_level(logging.DEBUG)
    part_file(media, job_a).write_bytes(part_file(media, job_b).read_bytes())
    download(a, job_a, "users")
    for key in settings.PLATFORM["CREDENTIALS_KEYS"]:
        assert key not in caplog.text
    assert "$distinct_id" not in caplog.text and "Signed up" not in caplog.text


def test_key_rotation_keeps_the_binding(jobs, media, settings):
    a, job_a, _, job_b = jobs
    old_keys = list(settings.PLATFORM["CREDENTIALS_KEYS"])
    new_key = Fernet.generate_key().decode()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key, *old_keys]}
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "4 bulk result part(s)" in out.getvalue()
    settings.PLATFORM = {**settings.PLATFORM, "CREDENTIALS_KEYS": [new_key]}

    received, error = read_stream(download(a, job_a, "users"))
    assert error is None and len(received.splitlines()) == 2500
    # Re-encrypted parts are still bound: job B's part over job A's is refused.
    part_file(media, job_a).write_bytes(part_file(media, job_b).read_bytes())
    assert download(a, job_a, "users").status_code == 409


def test_rotation_leaves_a_refused_part_alone_and_completes(jobs, media, settings, caplog):
    a, job_a, _, job_b = jobs
    part_file(media, job_a).write_bytes(part_file(media, job_b).read_bytes())
    new_key = Fernet.generate_key().decode()
    settings.PLATFORM = {
        **settings.PLATFORM,
        "CREDENTIALS_KEYS": [new_key, *settings.PLATFORM["CREDENTIALS_KEYS"]],
    }
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    # Job B's part and job A's two intact parts; the foreign copy is never re-encrypted
    # (that would launder it under the new key).
    assert "3 bulk result part(s)" in out.getvalue()
    assert download(a, job_a, "users").status_code == 409
    assert any("refused" in r.getMessage() for r in caplog.records)


# --- over real HTTP: gunicorn and a celery worker --------------------------------------------


@pytest.mark.integration
def test_gunicorn_breaks_off_a_download_at_a_refused_part(simulator):
    """Part 2 replaced by part 1 of the same job: the client gets part 1, then the connection
    ends without the chunked terminator, so every HTTP client reports an incomplete body."""
    simulator.reset()
    simulator.configure(profiles={"count": 2500})
    with LivePlatform(mixpanel_base_url=simulator.base_url, workers=1, threads=2) as live:
        live.start_worker(beat=False)
        token = live.create_instance(SA_CONFIGURATION)["token"]
        auth = {"Authorization": live.element_auth(token)}

        def call(method, path, headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=120)
            conn.request(method, path, headers={**auth, **(headers or {})})
            return conn, conn.getresponse()

        conn, response = call("POST", f"{BULK}/query?q={quote('select * from users')}")
        job_id = json.loads(response.read())["id"]
        conn.close()
        deadline = time.monotonic() + 120
        while True:
            conn, response = call("GET", f"{BULK}/{job_id}/status")
            status = json.loads(response.read())["status"]
            conn.close()
            if status in ("COMPLETED", "ERROR", "CANCELLED"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status == "COMPLETED"
        parts = sorted((live.tmp / "media" / "bulk" / str(job_id)).iterdir())
        assert len(parts) == 3
        parts[1].write_bytes(parts[0].read_bytes())

        conn, response = call("GET", f"{BULK}/{job_id}/users", {"Accept": "application/x-ndjson"})
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as broken:
            response.read()
        conn.close()
        received = broken.value.partial
        assert 0 < received.count(b"\n") <= 1000  # part 1 only, never its copy

        gunicorn_log = (live.tmp / "gunicorn.log").read_text()
        assert f"bulk job {job_id}: result part 2" in gunicorn_log
