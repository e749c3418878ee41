"""Through real gunicorn (2 workers): chunked request bodies under the body limit on every kind
of endpoint, bodies that end before their Content-Length, a %2F path that names nothing, and
/metrics adding up the worker processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform

LIMIT = 8192


@pytest.fixture(scope="module")
def live(simulator):
    simulator.reset()  # no fault switch left by an earlier test module
    # Two workers (the metrics add up across them), each with the shipped threads: calls of the
    # tests below may all land on one worker, and must stay inside its per-host bound.
    platform = LivePlatform(
        mixpanel_base_url=simulator.base_url,
        workers=2,
        extra_env={"MAX_REQUEST_BYTES": str(LIMIT)},
    )
    # Left by an "earlier run": the master must wipe it, or it would be counted (or break
    # the scrape: it is not a valid metrics file).
    stale = platform.tmp / "metrics" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a metrics file")
    with platform:
        assert not stale.exists()
        platform.instance = platform.create_instance(SA_CONFIGURATION)
        yield platform


def send(live, method, path, *, body=None, chunks=None, auth=None, content_type=None):
    """(status, headers, parsed JSON or text). ``chunks``: an iterable sent with
    ``Transfer-Encoding: chunked`` (http.client frames it; no Content-Length)."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    headers = {}
    if auth:
        headers["Authorization"] = auth
    if content_type:
        headers["Content-Type"] = content_type
    try:
        if chunks is not None:  # an iterator without a length: http.client sends it chunked
            connection.request(method, path, body=iter(chunks), headers=headers)
        else:
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, response, json.loads(data)
    return response.status, response, data.decode()


def split(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def padded(document: dict, length: int) -> bytes:
    """The JSON document followed by spaces (still valid JSON) up to ``length`` bytes."""
    raw = json.dumps(document).encode()
    assert len(raw) <= length
    return raw + b" " * (length - len(raw))


def instance_body(name: str) -> dict:
    return {
        "element": {"key": "mixpanel"},
        "name": name,
        "configuration": SA_CONFIGURATION,
    }


def import_body(n: int) -> dict:
    return {
        "events": [
            {
                "event": "Chunked",
                "properties": {
                    "time": 1700000000 + i,
                    "distinct_id": f"c{i}",
                    "$insert_id": f"ci{n}-{i}",
                },
            }
            for i in range(n)
        ]
    }


def assert_413(status, response, body):
    assert status == 413, body
    assert set(body) == {"requestId", "message"} and str(LIMIT) in body["message"]
    assert response.getheader("Elements-Request-Id") == body["requestId"]


# --- chunked bodies ---------------------------------------------------------------------------


def test_a_small_chunked_body_is_read_by_a_drf_view(live):
    body = json.dumps(instance_body("chunked small")).encode()
    status, _, answer = send(
        live,
        "POST",
        "/elements/api-v2/instances",
        chunks=split(body, 7),
        auth=live.platform_auth,
        content_type="application/json",
    )
    assert status == 200, answer
    assert answer["name"] == "chunked small"


def test_a_chunked_body_of_exactly_the_limit_is_read(live):
    status, _, answer = send(
        live,
        "POST",
        "/elements/api-v2/instances",
        chunks=split(padded(instance_body("chunked at the limit"), LIMIT)),
        auth=live.platform_auth,
        content_type="application/json",
    )
    assert status == 200, answer
    assert answer["name"] == "chunked at the limit"


def test_a_chunked_body_one_byte_over_the_limit_is_413(live):
    for kind, path, auth in (
        ("drf", "/elements/api-v2/instances", live.platform_auth),
        ("element call", f"/mixpanel/import_events/{live.instance['id']}", None),
        ("resource style", "/elements/api-v2/hubs/general/activities/import", None),
        ("bulk", "/elements/api-v2/bulk/query?q=select%20*%20from%20users", None),
        ("admin", "/admin/login/", None),
    ):
        auth = auth or live.element_auth(live.instance["token"])
        status, response, answer = send(
            live,
            "POST",
            path,
            chunks=split(padded(instance_body("too big"), LIMIT + 1)),
            auth=auth,
            content_type="application/json",
        )
        assert status == 413, (kind, answer)
        assert_413(status, response, answer)
    status, _, listed = send(live, "GET", "/elements/api-v2/instances", auth=live.platform_auth)
    assert "too big" not in [i["name"] for i in listed]


def test_element_calls_read_chunked_bodies_in_both_url_styles(live, simulator):
    auth = live.element_auth(live.instance["token"])
    iid = live.instance["id"]
    status, _, answer = send(
        live,
        "POST",
        f"/mixpanel/import_events/{iid}",
        chunks=split(json.dumps(import_body(3)).encode(), 50),
        auth=auth,
        content_type="application/json",
    )
    assert status == 200, answer
    assert answer["num_records_imported"] == 3, answer
    # As many events as fit under the limit, the body padded to exactly the limit.
    events = 30
    while len(json.dumps(import_body(events + 1)).encode()) <= LIMIT:
        events += 1
    status, _, answer = send(
        live,
        "POST",
        "/elements/api-v2/hubs/general/activities/import",
        chunks=split(padded(import_body(events), LIMIT), 4096),
        auth=auth,
        content_type="application/json",
    )
    assert status == 200, answer
    assert answer["num_records_imported"] == events, answer


def test_the_limit_is_checked_as_the_body_streams_in(live):
    """413 as soon as the limit is passed: the body's end is never sent, and the answer comes
    anyway (a server reading the whole body first would wait for it)."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=15) as sock:
        head = (
            "POST /elements/api-v2/instances HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{live.port}\r\n"
            f"Authorization: {live.platform_auth}\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"x" * (LIMIT + 100)
        sock.sendall(head.encode() + b"%x\r\n" % len(piece) + piece + b"\r\n")
        # ... and no last chunk: the body never ends.
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 10
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert str(LIMIT) in body["message"]


def test_a_malformed_chunked_body_is_400_in_the_error_shape(live):
    with socket.create_connection(("127.0.0.1", live.port), timeout=15) as sock:
        sock.sendall(
            b"POST /elements/api-v2/instances HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"a":1}\r\n0\r\n\r\n'  # says 5 bytes, sends 7
        )
        answer = b""
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer += data
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"]


def raw_exchange(live, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", live.port), timeout=15) as sock:
        sock.sendall(request)
        answer = b""
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "coding, status",
    [
        (b"Content-Encoding: gzip\r\nContent-Length: 7\r\n", 415),
        (b"Content-Encoding: br\r\nContent-Length: 7\r\n", 415),
        (b"Transfer-Encoding: gzip, chunked\r\n", 501),
    ],
)
def test_a_coded_body_is_refused_not_read_as_json(live, coding, status):
    """A compressed body read as if it were the JSON would be garbage at best."""
    body = b'{"a":1}'
    if b"chunked" in coding:
        body = b"7\r\n" + body + b"\r\n0\r\n\r\n"
    answer_status, answer = raw_exchange(
        live,
        b"POST /elements/api-v2/instances HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n" + coding + b"\r\n" + body,
    )
    assert answer_status == status, answer
    answer = json.loads(answer)
    assert set(answer) == {"requestId", "message"} and "not supported" in answer["message"]


def test_identity_is_no_coding(live):
    status, answer = raw_exchange(
        live,
        b"GET /elements/api-v2/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Encoding: identity\r\n"
        b"Authorization: " + live.platform_auth.encode() + b"\r\nConnection: close\r\n\r\n",
    )
    assert status == 200, answer[:300]


# --- bodies cut short of their Content-Length --------------------------------------------------

ACCOUNTS = "55b4fb2b-7d1e-4a51-9a3c-0c2f1e6b8a01"  # a lookup table of the simulator's seed


def cut_short(live, method, path, body: bytes, sent: int, headers: dict) -> tuple[int, dict]:
    """Announces ``body``'s length, sends its first ``sent`` bytes and shuts the connection for
    writing, as a client that goes away mid-body; (status, JSON) of the answer it still reads."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection(("127.0.0.1", live.port), timeout=15) as sock:
        sock.sendall(head.encode() + b"\r\n" + body[:sent])
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def assert_cut_short(status, answer, sent: int, length: int):
    assert status == 400, answer
    assert set(answer) == {"requestId", "message"}
    assert "ended before its declared length" in answer["message"]
    assert f"{sent} of {length} bytes" in answer["message"]


def test_a_table_cut_short_never_replaces_the_vendors(live, simulator):
    rows = [f"a-{i},Account number {i},2026-01-{i % 28 + 1:02d}" for i in range(40)]
    table = ("account_id,name,since\n" + "\n".join(rows) + "\n").encode()
    sent = table.index(b"\n", len(table) // 2) + 1  # whole rows: a valid, shorter table
    path = f"/elements/api-v2/hubs/general/lookup-tables/{ACCOUNTS}"
    headers = {
        "Authorization": live.element_auth(live.instance["token"]),
        "Content-Type": "text/csv",
    }
    before = simulator.lookup_tables()
    simulator.clear_requests()

    status, answer = cut_short(live, "PUT", path, table, sent, headers)
    assert_cut_short(status, answer, sent, len(table))
    assert simulator.lookup_tables() == before
    assert not [r for r in simulator.requests() if r["path"].startswith("/lookup-tables/")]

    # The same request, whole, replaces the table.
    status, _, answer = send(
        live, "PUT", path, body=table, auth=headers["Authorization"], content_type="text/csv"
    )
    assert status == 200, answer
    assert answer["rows"] == len(rows)
    stored = next(t for t in simulator.lookup_tables() if t["id"] == ACCOUNTS)
    assert stored["rows"][-1] == rows[-1].split(",")


def test_a_json_body_cut_short_is_400_not_an_empty_or_partial_document(live):
    body = padded(instance_body("cut short"), 2000)
    headers = {"Authorization": live.platform_auth, "Content-Type": "application/json"}
    for sent in (0, len(body) - 1):
        status, answer = cut_short(live, "POST", "/elements/api-v2/instances", body, sent, headers)
        assert_cut_short(status, answer, sent, len(body))
    status, _, listed = send(live, "GET", "/elements/api-v2/instances", auth=live.platform_auth)
    assert "cut short" not in [i["name"] for i in listed]


def test_a_line_cut_short_is_refused_too():
    """Django reads a body with ``read``, and with ``readline`` when it parses a form."""
    import io

    from platform_core.exceptions import IncompleteBody
    from platform_core.wsgi import _DeclaredLengthInput

    whole = _DeclaredLengthInput(io.BytesIO(b"a=1\nb=2"), 7)
    assert (whole.readline(), whole.readline(), whole.read()) == (b"a=1\n", b"b=2", b"")
    short = _DeclaredLengthInput(io.BytesIO(b"a=1\nb="), 7)
    assert short.readline() == b"a=1\n"
    with pytest.raises(IncompleteBody, match="6 of 7 bytes"):
        short.readline()


def test_an_encoded_slash_that_names_nothing_is_404(live):
    for auth in (None, live.platform_auth, live.element_auth(live.instance["token"])):
        status, _, answer = send(live, "GET", "/elements/api-v2/instances/1%2F2", auth=auth)
        assert status == 404 and set(answer) == {"requestId", "message"}, answer


# --- /metrics over two worker processes -------------------------------------------------------

PING = "/elements/api-v2/hubs/general/ping"


def scrape(live) -> dict:
    status, response, text = send(live, "GET", "/metrics")
    assert status == 200, text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return found


PING_CALLS = (
    "platform_element_calls_total",
    ("element", "mixpanel"),
    ("operation", "ping"),
    ("status", "200"),
)


def ping_counts_by_process(live) -> dict[int, float]:
    """Each worker process's own count of pings, from its file in the metrics directory."""
    counts = {}
    for path in (live.tmp / "metrics").glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            name, sample, labels, _ = json.loads(key)
            if sample == "platform_element_calls_total" and labels.get("operation") == "ping":
                counts[pid] = counts.get(pid, 0) + value
    return counts


def ping_many(live, calls: int) -> None:
    auth = live.element_auth(live.instance["token"])
    failures = []

    def run(n):
        for _ in range(n):
            status, _, answer = send(live, "GET", PING, auth=auth)  # a new connection each
            if status != 200:
                failures.append(answer)

    threads = [threading.Thread(target=run, args=(calls // 4,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def worker_pids(live) -> list[int]:
    text = Path(f"/proc/{live.proc.pid}/task/{live.proc.pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_metrics_add_up_every_worker_process(live):
    before = scrape(live).get(PING_CALLS, 0)
    made = 0
    for _ in range(5):  # until both workers have served some (the kernel picks who accepts)
        ping_many(live, 40)
        made += 40
        if len([c for c in ping_counts_by_process(live).values() if c]) >= 2:
            break
    assert len([c for c in ping_counts_by_process(live).values() if c]) >= 2
    for _ in range(6):  # whichever worker answers the scrape, it reports every process's calls
        assert scrape(live)[PING_CALLS] == before + made

    found = scrape(live)
    host = f"127.0.0.1:{live.mixpanel_base_url.rsplit(':', 1)[1]}"
    assert found[("platform_vendor_request_duration_seconds_count", ("host", host))] >= made
    text = send(live, "GET", "/metrics")[2]
    for secret in (live.user_secret, live.organization_secret, live.instance["token"]):
        assert secret not in text
    for value in SA_CONFIGURATION.values():
        assert str(value) not in text or len(str(value)) < 6

    # A worker killed outright: its counts stay (gunicorn replaces it; the file remains).
    victim = worker_pids(live)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = worker_pids(live)
        if victim not in pids and len(pids) == 2:
            break
        time.sleep(0.2)
    assert scrape(live)[PING_CALLS] == before + made


def test_bulk_jobs_and_queue_depth_through_gunicorn(live):
    """No Celery worker runs here: submitted jobs stay CREATED, their messages in the embedded
    broker's queue."""
    auth = live.element_auth(live.instance["token"])
    before = scrape(live)
    queued = before[("platform_queue_messages", ("queue", "celery"))]
    created = before[("platform_bulk_jobs", ("status", "CREATED"))]
    for _ in range(2):
        status, _, answer = send(
            live, "POST", "/elements/api-v2/bulk/query?q=select%20*%20from%20users", auth=auth
        )
        assert status == 200 and answer["status"] == "CREATED", answer
    after = scrape(live)
    assert after[("platform_queue_messages", ("queue", "celery"))] == queued + 2
    assert after[("platform_bulk_jobs", ("status", "CREATED"))] == created + 2
    assert after[("platform_broker_up",)] == 1


def test_metrics_refuse_a_client_outside_the_allowed_networks(simulator):
    """Loopback is allowed by default; here only 10.0.0.0/8 is, with a token."""
    env = {"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8", "METRICS_TOKEN": "scrape-token-0123"}
    with LivePlatform(
        mixpanel_base_url=simulator.base_url, workers=1, threads=2, extra_env=env
    ) as live:
        for auth in (None, "Bearer scrape-token-0123", "Bearer wrong"):
            status, _, answer = send(live, "GET", "/metrics", auth=auth)
            assert status == 403 and set(answer) == {"requestId", "message"}, answer
            assert "scrape-token-0123" not in json.dumps(answer)


def test_a_server_that_leaves_the_chunk_framing_in_the_stream_gets_411():
    """Not every WSGI server decodes chunks (wsgiref does not): without
    ``wsgi.input_terminated`` the stream is not the body, so it is not read as one."""
    import io

    from platform_core.wsgi import ChunkedBody

    def never(environ, start_response):
        raise AssertionError("the application must not see this request")

    answered = []
    environ = {
        "REQUEST_METHOD": "POST",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"2\r\n{}\r\n0\r\n\r\n"),
    }
    body = ChunkedBody(never, max_bytes=100)(
        environ, lambda status, headers: answered.append((status, dict(headers)))
    )
    assert answered[0][0].startswith("411")
    message = json.loads(b"".join(body))
    assert message["requestId"] == answered[0][1]["Elements-Request-Id"]
