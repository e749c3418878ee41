"""Through real gunicorn with one worker of two threads: clients that stall while they send their
request lose their connection after WEB_REQUEST_READ_TIMEOUT (gunicorn.conf.py), and the threads
they held serve everyone else; clients that are slow but keep sending, and calls that wait on a
slow vendor, are served."""

from __future__ import annotations

import http.client
import json
import runpy
import socket
import threading
import time

import pytest

from conftest import SA_CONFIGURATION
from tests.live_platform import ROOT, LivePlatform

THREADS = 2
TIMEOUT = 2.0  # WEB_REQUEST_READ_TIMEOUT


@pytest.fixture(scope="module")
def live(simulator):
    simulator.reset()
    platform = LivePlatform(
        mixpanel_base_url=simulator.base_url,
        workers=1,
        threads=THREADS,
        extra_env={"WEB_REQUEST_READ_TIMEOUT": str(TIMEOUT)},
    )
    with platform:
        platform.instance = platform.create_instance(SA_CONFIGURATION)
        yield platform


def connect(live, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    sock.sendall(data)
    return sock


def head(method: str, path: str, *, auth: str, length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines.append(f"Authorization: {auth}")
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises on a timeout)."""
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def test_stalled_clients_are_dropped_and_free_their_threads(live):
    instances = head("GET", "/elements/api-v2/instances", auth=live.platform_auth)
    create = head("POST", "/elements/api-v2/instances", auth=live.platform_auth, length=100)
    stalled = [
        connect(live, create),  # a body that never comes
        connect(live, create + b'{"name":'),  # part of a body
        *(connect(live, instances[: 20 + i]) for i in range(6)),  # part of the headers
    ]
    assert len(stalled) > THREADS
    try:
        started = time.monotonic()
        # Queued behind every stalled connection, answered once the first ones are dropped: the
        # others waited in the queue past their deadline, so no thread waits for them again.
        with connect(live, instances) as sock:
            answer = answer_of(sock)
        waited = time.monotonic() - started
        assert status_of(answer) == 200, answer[:300]
        assert TIMEOUT / 2 < waited < TIMEOUT + 3, waited  # the threads were taken, then freed

        # The server closed every stalled connection; a body it waited for in vain is a 400.
        answers = [answer_of(sock) for sock in stalled]
        for answer in answers[:2]:
            assert status_of(answer) == 400, answer[:300]
            assert "ended before its declared length" in body_of(answer)["message"]
        assert answers[2:] == [b""] * 6
        assert time.monotonic() - started < TIMEOUT + 3
        # Dropped as clients that left, without a stack trace in the log.
        assert "Traceback" not in (live.tmp / "gunicorn.log").read_text()
    finally:
        for sock in stalled:
            sock.close()


def test_headers_sent_too_slowly_are_dropped_even_while_they_trickle(live):
    request = head("GET", "/elements/api-v2/instances", auth=live.platform_auth)
    endless = request[:-2] + b"X-Padding: " + b"x" * 1000  # a byte at a time: over a minute
    with connect(live, b"") as sock:
        started = time.monotonic()
        with pytest.raises(OSError):  # the server shut the connection: a send or a reset fails
            for byte in endless:
                if time.monotonic() - started > TIMEOUT + 2:
                    break
                sock.sendall(bytes([byte]))
                time.sleep(TIMEOUT / 8)


def test_a_slow_upload_that_keeps_sending_is_read_to_its_end(live):
    body = json.dumps(
        {"element": {"key": "mixpanel"}, "name": "slow upload", "configuration": SA_CONFIGURATION}
    ).encode()
    request = head("POST", "/elements/api-v2/instances", auth=live.platform_auth, length=len(body))
    with connect(live, request) as sock:
        for start in range(0, len(body), len(body) // 3 + 1):  # longer than TIMEOUT in all
            time.sleep(TIMEOUT * 0.6)
            sock.sendall(body[start : start + len(body) // 3 + 1])
        answer = answer_of(sock)
    assert status_of(answer) == 200, answer[:300]
    assert body_of(answer)["name"] == "slow upload"


def test_a_kept_alive_connection_idle_longer_than_the_timeout_serves_its_next_request(live):
    """Its next request's headers are due from when they start to arrive, not from the last."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    used = []
    try:
        for pause in (TIMEOUT + 0.5, 0):
            connection.request(
                "GET", "/elements/api-v2/instances", headers={"Authorization": live.platform_auth}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            used.append(connection.sock)
            time.sleep(pause)
    finally:
        connection.close()
    assert used[0] is used[1]  # one connection


def test_a_call_waiting_on_its_vendor_longer_than_the_timeout_is_answered(live, simulator):
    simulator.faults(latency_ms=int(TIMEOUT * 1500), path_prefix="/lookup-tables", count=1)
    auth = live.element_auth(live.instance["token"])
    started = time.monotonic()
    with connect(live, head("GET", "/elements/api-v2/hubs/general/lookup-tables", auth=auth)) as s:
        answer = answer_of(s)
    assert status_of(answer) == 200, answer[:300]
    assert time.monotonic() - started > TIMEOUT * 1.5


def test_an_answer_goes_out_while_the_client_reads_it_and_is_dropped_when_it_stops(
    monkeypatch, tmp_path
):
    """``ClientSocket.sendall`` bounds each wait for the client, not the whole answer."""
    monkeypatch.setenv("WEB_REQUEST_READ_TIMEOUT", "1")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # the file sets it: restored
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    answer = b"x" * (4 * 1024 * 1024)

    def reader(client, received):
        while data := client.recv(256 * 1024):
            received.append(len(data))
            time.sleep(0.1)  # at most a few MB/s: the answer takes over the timeout

    server, client = socket.socketpair()
    server = conf["ClientSocket"](fileno=server.detach())
    server.headers_due = None
    server.setblocking(True)
    received = []
    thread = threading.Thread(target=reader, args=(client, received))
    thread.start()
    started = time.monotonic()
    server.sendall(answer)
    assert time.monotonic() - started > 1
    server.close()
    thread.join(10)
    assert sum(received) == len(answer)
    client.close()

    server, client = socket.socketpair()  # a client that reads nothing
    server = conf["ClientSocket"](fileno=server.detach())
    server.headers_due = None
    server.setblocking(True)
    started = time.monotonic()
    with pytest.raises(BrokenPipeError):
        server.sendall(answer)
    assert 1 <= time.monotonic() - started < 3
    server.close()
    client.close()
