"""Bulk jobs end to end with real parts: gunicorn, a real ``celery worker`` subprocess (with
beat), Redis as the broker, the Mixpanel simulator over HTTP, and the database of DATABASE_URL
(PostgreSQL in CI). With CI set, a missing Redis fails these tests instead of skipping them.

The crash tests (SIGKILL, Redis restart) are in test_bulk_crash.py.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import http.client
import io
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest

from conftest import IN_CI, SA_CONFIGURATION
from simulators.mixpanel import datagen
from tests.live_platform import LivePlatform

pytestmark = pytest.mark.integration

BULK = "/elements/api-v2/bulk"
SIGNING_KEY = "live-signing-key-7f3a"
TERMINAL = ("COMPLETED", "ERROR", "CANCELLED")
# Short leases and sweeps so crash recovery takes seconds, not minutes.
FAST_BULK_ENV = {
    "BULK_LEASE_SECONDS": "3",
    "BULK_SWEEP_INTERVAL": "1",
    "BULK_REQUEUE_AFTER": "3",
    "BULK_RETRY_BACKOFF": "0.2",
    "BULK_CALLBACK_BACKOFF": "0.3",
    "CALLBACK_ALLOW_PRIVATE_NETWORKS": "1",
}


def require(condition: bool, why: str) -> None:
    """Skip without the service, except under CI, where a missing service is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{why} (CI is set: bulk integration tests need it)")
    pytest.skip(why)


def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        ok = True
    except (redis.RedisError, OSError):
        ok = False
    require(ok, f"Redis is not reachable at {url}")
    return url


def drop_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class Api:
    """The bulk API of one instance, over real HTTP."""

    def __init__(self, live: LivePlatform, token: str, auth: str | None = None):
        self.live = live
        self.auth = auth or live.element_auth(token)

    def request(self, method, path, headers=None, body=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", self.live.port, timeout=timeout)
        try:
            conn.request(
                method, path, body=body, headers={"Authorization": self.auth, **(headers or {})}
            )
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def submit(self, q: str, *, callback: str | None = None, **params) -> int:
        query = "&".join([f"q={quote(q)}"] + [f"{k}={quote(v)}" for k, v in params.items()])
        headers = {"Elements-Async-Callback-Url": callback} if callback else {}
        status, _, body = self.request("POST", f"{BULK}/query?{query}", headers)
        assert status == 200, body
        return json.loads(body)["id"]

    def status(self, job_id: int) -> dict:
        status, _, body = self.request("GET", f"{BULK}/{job_id}/status")
        assert status == 200, body
        return json.loads(body)

    def wait(self, job_id: int, until=TERMINAL, timeout: float = 60, check=None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            current = self.status(job_id)
            if current["status"] in until and (check is None or check(current)):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {current} after {timeout} s")
            time.sleep(0.05)

    def wait_records(self, job_id: int, at_least: int, timeout: float = 60) -> dict:
        return self.wait(
            job_id, ("RUNNING",) + TERMINAL, timeout, lambda s: s["recordsCount"] >= at_least
        )

    def download(self, job_id: int, object_name: str, accept: str | None = None):
        headers = {"Accept": accept} if accept else {}
        return self.request("GET", f"{BULK}/{job_id}/{object_name}", headers, timeout=300)

    def ndjson(self, job_id: int, object_name: str) -> bytes:
        status, _, body = self.download(job_id, object_name, "application/x-ndjson")
        assert status == 200, body[:500]
        return body

    def cancel(self, job_id: int) -> dict:
        status, _, body = self.request("PUT", f"{BULK}/{job_id}/cancel")
        assert status == 200, body
        return json.loads(body)


def expected_activities(day_from: str, day_to: str, per_day: int) -> bytes:
    """The export as the platform writes it: each event with a top-level ``id`` ($insert_id)."""
    lines = []
    for line in datagen.export_lines(day_from, day_to, per_day):
        insert_id = json.loads(line)["properties"]["$insert_id"]
        lines.append(b'{"id":' + json.dumps(insert_id).encode() + b"," + line[1:])
    return b"".join(lines)


class Receiver:
    """A tiny HTTP receiver on loopback; answers ``statuses`` in turn (the last one repeats)."""

    def __init__(self, statuses=(200,), path="/bulk-done"):
        self.statuses = list(statuses)
        self.received: list[tuple[int, dict, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                    outer.received.append((status, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[tuple[dict, bytes]]:
        with self.lock:
            return [(h, b) for status, h, b in self.received if status == 200]

    def wait_delivered(self, count: int = 1, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            assert time.monotonic() < deadline, f"callbacks so far: {self.received}"
            time.sleep(0.05)
        return self.delivered()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def signature_of(body: bytes, key: str = SIGNING_KEY) -> str:
    return (
        "sha256=" + base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    )


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(simulator):
    url = redis_url()
    prefix = f"bulk-live-{uuid.uuid4().hex[:8]}:"
    env = {**FAST_BULK_ENV, "CELERY_BROKER_URL": url, "CELERY_BROKER_KEY_PREFIX": prefix}
    platform = LivePlatform(mixpanel_base_url=simulator.base_url, extra_env=env)
    with platform:
        platform.start_worker(concurrency=2)
        yield platform
    drop_keys(url, prefix)


@pytest.fixture(scope="module")
def instance(live, simulator):
    simulator.reset()
    return live.create_instance(
        {**SA_CONFIGURATION, "event.notification.signature.key": SIGNING_KEY}
    )


@pytest.fixture
def api(live, instance, sim):
    return Api(live, instance["token"])


# --- tests ---------------------------------------------------------------------------------


def test_a_job_of_each_object_completes_exactly(api, sim):
    sim.configure(events_per_day=1000, profiles={"count": 2500})
    days = ("2024-01-01", "2024-01-03")
    activities = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    users = api.submit("select * from users")
    accounts = api.submit("select * from service-accounts")

    done = api.wait(activities)
    assert done["status"] == "COMPLETED", done
    assert done["recordsCount"] == 3000 and done["recordsFailedCount"] == 0
    assert api.ndjson(activities, "activities") == expected_activities(*days, 1000)

    done = api.wait(users)
    assert done["status"] == "COMPLETED" and done["recordsCount"] == 2500, done
    records = [json.loads(line) for line in api.ndjson(users, "users").splitlines()]
    assert len(records) == 2500
    assert {r["$distinct_id"]: r for r in records} == {
        datagen.profile(i)["$distinct_id"]: {
            "id": datagen.profile(i)["$distinct_id"],
            **datagen.profile(i),
        }
        for i in range(2500)
    }

    done = api.wait(accounts)
    assert done["status"] == "COMPLETED", done
    _, _, body = sim.request(
        "GET", "/api/app/organizations/1001/service-accounts", auth=sim.sa_auth()
    )
    # last_used moves whenever the account authenticates (this very request included).
    expected = [{**a, "last_used": None} for a in json.loads(body)["results"]]
    got = [
        {**a, "last_used": None} for a in json.loads(api.download(accounts, "service-accounts")[2])
    ]
    assert done["recordsCount"] == len(expected) >= 1 and got == expected


def test_csv_of_nested_properties_round_trips(api, sim):
    sim.configure(events_per_day=800, profiles={"count": 600})
    days = ("2024-02-10", "2024-02-11")
    activities = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    users = api.submit("select * from users")
    jobs = ((activities, "activities", "properties"), (users, "users", "$properties"))
    for job_id, object_name, nested in jobs:
        assert api.wait(job_id)["status"] == "COMPLETED"
        records = [json.loads(line) for line in api.ndjson(job_id, object_name).splitlines()]
        status, headers, body = api.download(job_id, object_name, "text/csv")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(rows) == len(records) > 0
        decoded = [{**row, nested: json.loads(row[nested])} for row in rows]
        assert decoded == records
        if object_name == "activities":  # properties nest further: {"nested": {"tags": [...]}}
            assert all(isinstance(r["properties"]["nested"]["tags"], list) for r in decoded)
        # The JSON array and the default format hold the same records.
        for accept in ("application/json", None):
            status, headers, body = api.download(job_id, object_name, accept)
            assert status == 200 and headers["Content-Type"] == "application/json"
            assert json.loads(body) == records


def test_cancel_mid_run_stops_the_worker_and_calls_back(api, sim):
    sim.configure(events_per_day=2000)
    sim.faults(latency_ms=300, path_prefix="/api/2.0/export")
    receiver = Receiver()
    try:
        job = api.submit(
            "select * from activities",
            callback=receiver.url,
            **{"from": "2024-01-01", "to": "2024-01-20"},
        )
        api.wait_records(job, 2000)
        cancelled = api.cancel(job)
        assert cancelled["status"] == "CANCELLED"
        exports = sum(1 for r in sim.requests() if r["path"] == "/api/2.0/export")
        time.sleep(1.5)
        later = api.status(job)
        assert later["status"] == "CANCELLED" and later["statusMessage"] == "Cancelled by the user."
        assert later["recordsCount"] < 40000
        # The worker noticed at its next page and asked for at most one more day.
        assert sum(1 for r in sim.requests() if r["path"] == "/api/2.0/export") <= exports + 1
        time.sleep(1)
        assert api.status(job)["recordsCount"] == later["recordsCount"]
        status, _, body = api.download(job, "activities")
        assert status == 409 and json.loads(body)["requestId"]
        ((headers, body),) = receiver.wait_delivered()
        assert json.loads(body)["status"] == "CANCELLED" and json.loads(body)["id"] == job
        assert headers["Elements-Webhook-Signature"] == signature_of(body)
    finally:
        receiver.close()


def test_a_rate_limit_and_a_cut_stream_mid_export_are_retried(api, sim):
    sim.configure(events_per_day=3000)
    sim.faults(latency_ms=400, path_prefix="/api/2.0/export")
    days = ("2024-01-01", "2024-01-06")
    job = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    api.wait_records(job, 3000)
    sim.faults(rate_limit={"retry_after": 1}, count=2, path_prefix="/api/2.0/export")
    sim.faults(export_fail_after=1200, count=1, path_prefix="/api/2.0/export")
    done = api.wait(job, timeout=60)
    assert done["status"] == "COMPLETED", done
    assert done["recordsCount"] == 18000 and done["recordsFailedCount"] == 0
    exports = [r for r in sim.requests() if r["path"] == "/api/2.0/export"]
    assert [r["status"] for r in exports].count(429) == 2
    assert api.ndjson(job, "activities") == expected_activities(*days, 3000)


def test_vendor_errors_end_in_error_with_a_status_message(api, sim):
    sim.configure(events_per_day=100)
    sim.faults(
        status={"status": 400, "body": {"error": "Simulated: project 2002 export disabled"}},
        path_prefix="/api/2.0/export",
    )
    refused = api.submit("select * from activities", **{"from": "2024-01-01", "to": "2024-01-02"})
    done = api.wait(refused)
    assert done["status"] == "ERROR", done
    assert (
        "project 2002 export disabled" in done["statusMessage"] and "400" in done["statusMessage"]
    )
    assert done["completedDate"]

    sim.clear_faults()
    sim.faults(status=503, path_prefix="/api/2.0/export")
    failing = api.submit("select * from activities", **{"from": "2024-01-01", "to": "2024-01-02"})
    done = api.wait(failing, timeout=60)
    assert done["status"] == "ERROR", done
    assert done["statusMessage"].startswith("Gave up after 5 retries")
    assert "simulated failure" in done["statusMessage"]


def test_a_garbled_record_is_counted_as_failed(api, sim):
    sim.configure(events_per_day=500)
    sim.faults(export_garble_line=7, count=1, path_prefix="/api/2.0/export")
    job = api.submit("select * from activities", **{"from": "2024-01-01", "to": "2024-01-01"})
    done = api.wait(job)
    assert done["status"] == "COMPLETED"
    assert (done["recordsCount"], done["recordsFailedCount"]) == (499, 1)
    status, _, body = api.request("GET", f"{BULK}/{job}/errors")
    errors = json.loads(body)
    assert status == 200 and len(errors) == 1 and errors[0]["position"] == "2024-01-01#8"


def test_the_callback_arrives_once_with_a_valid_signature(api, sim):
    sim.configure(events_per_day=300)
    receiver = Receiver(statuses=(500, 200))  # the first delivery fails and is retried
    try:
        job = api.submit(
            "select * from activities",
            callback=receiver.url,
            **{"from": "2024-01-01", "to": "2024-01-02"},
        )
        ((headers, body),) = receiver.wait_delivered()
        time.sleep(2)  # nothing more comes
        assert len(receiver.delivered()) == 1 and len(receiver.received) == 2
    finally:
        receiver.close()
    assert headers["Content-Type"] == "application/json"
    assert headers["Elements-Webhook-Signature"] == signature_of(body)
    sent = json.loads(body)
    assert sent == api.status(job)
    assert sent["status"] == "COMPLETED" and sent["recordsCount"] == 600


def test_http_statuses_and_tenant_isolation(live, api, sim):
    sim.configure(profiles={"count": 50})
    status, _, body = api.request("POST", f"{BULK}/query?q={quote('select * from nothing')}")
    assert status == 400 and "Unknown object" in json.loads(body)["message"]
    status, _, body = api.request("POST", f"{BULK}/query?q={quote('select * from')}")
    assert status == 400 and "position" in json.loads(body)["message"]
    status, _, _ = api.request(
        "POST",
        f"{BULK}/query?q={quote('select * from users')}",
        {"Elements-Async-Callback-Url": "ftp://x/"},
    )
    assert status == 400

    job = api.submit("select * from users")
    api.wait(job)
    assert api.download(job, "users", "application/xml")[0] == 406
    assert api.download(job, "users", "text/csv")[0] == 200
    assert api.download(job, "activities")[0] == 404
    status, _, body = api.request("GET", f"/elements/api-v2/hubs/general/bulk/{job}/status")
    assert status == 200 and json.loads(body)["id"] == job
    status, _, body = api.request("GET", f"{BULK}/jobs")
    assert status == 200 and job in [j["id"] for j in json.loads(body)]

    # Another tenant, with its own instance, sees none of it.
    other = json.loads(live.manage("create_organization", "Other", "--email", "o@x.test", "--json"))
    org_auth = f"User {other['user_secret']}, Organization {other['organization_secret']}"
    creator = Api(live, "", auth=org_auth)
    status, _, body = creator.request(
        "POST",
        "/elements/api-v2/instances",
        {"Content-Type": "application/json"},
        json.dumps(
            {"element": {"key": "mixpanel"}, "name": "o", "configuration": SA_CONFIGURATION}
        ),
    )
    assert status == 200, body
    theirs = Api(live, "", auth=f"User {other['user_secret']}, Element {json.loads(body)['token']}")
    for method, path in (
        ("GET", f"{BULK}/{job}/status"),
        ("GET", f"{BULK}/{job}/users"),
        ("GET", f"{BULK}/{job}/errors"),
        ("PUT", f"{BULK}/{job}/cancel"),
    ):
        status, _, body = theirs.request(method, path)
        assert status == 404, (path, body)
    assert json.loads(theirs.request("GET", f"{BULK}/jobs")[2]) == []
    assert api.status(job)["status"] == "COMPLETED"

    sim.faults(latency_ms=1000, path_prefix="/api/2.0/export")
    running = api.submit("select * from activities", **{"from": "2024-01-01", "to": "2024-01-01"})
    status, _, body = api.download(running, "activities")
    assert status == 409 and "COMPLETED" in json.loads(body)["message"]
    assert api.wait(running)["status"] == "COMPLETED"
