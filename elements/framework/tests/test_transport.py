"""The vendor transport's connection rules, against small loopback servers whose behaviour each
test controls (the Mixpanel simulator's faults are covered end to end in
tests/test_vendor_faults.py)."""

import http.client
import os
import socket
import struct
import threading
import time

import pytest

from elements.framework.transport import ConnectFailed, HostConnections, PerHost

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class ScriptedServer:
    """Accepts connections and answers each request with ``answer(n)`` (n counts requests
    over all connections); ``close_after_answer`` closes the connection after each answer
    without saying so, as a vendor's idle timeout does."""

    def __init__(self, answer=lambda n: OK, *, close_after_answer=False, reset=False):
        self.answer = answer
        self.close_after_answer = close_after_answer
        self.reset = reset  # close with a TCP reset rather than a FIN
        self.connections = 0
        self.requests = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        with sock:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                _, _, buffered = buffered.partition(b"\r\n\r\n")
                self.requests += 1
                reply = self.answer(self.requests)
                if reply is None:
                    return  # drop the connection without answering
                sock.sendall(reply)
                if self.close_after_answer:
                    if self.reset:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    return

    def close(self):
        self.listener.close()


@pytest.fixture
def server_factory():
    servers = []

    def make(*args, **kwargs):
        server = ScriptedServer(*args, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def get(connections, read_timeout=2.0):
    return connections.request(
        "GET", "/x", body=None, headers={}, connect_timeout=2.0, read_timeout=read_timeout
    )


def test_sequential_calls_share_one_keep_alive_connection(server_factory):
    server = server_factory()
    connections = HostConnections(server.base_url)
    for _ in range(5):
        answer = get(connections)
        assert (answer.status, answer.data) == (200, b"{}")
        assert answer.headers.get("content-type") == "application/json"
    assert (server.connections, server.requests) == (1, 5)


def test_a_connection_the_vendor_closed_while_idle_is_not_reused(server_factory):
    server = server_factory(close_after_answer=True)
    connections = HostConnections(server.base_url)
    for _ in range(3):
        get(connections)
        time.sleep(0.05)  # let the close arrive
    assert (server.connections, server.requests) == (3, 3)


def test_a_request_that_cannot_be_written_on_a_reused_connection_goes_on_a_fresh_one(
    server_factory, monkeypatch
):
    # The vendor resets the connection between the idle check and the write: the write fails,
    # so the vendor cannot have seen the request, and it is sent once more on a new connection.
    server = server_factory(close_after_answer=True, reset=True)
    connections = HostConnections(server.base_url)
    get(connections)
    time.sleep(0.05)  # the reset has arrived
    monkeypatch.setattr("elements.framework.transport._readable", lambda sock: False)
    answer = get(connections)
    assert answer.status == 200
    assert (server.connections, server.requests) == (2, 2)


def test_an_answer_saying_connection_close_is_not_pooled(server_factory):
    closing = OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    server = server_factory(lambda n: closing)
    connections = HostConnections(server.base_url)
    get(connections)
    get(connections)
    assert server.connections == 2
    assert len(connections._idle) == 0


def test_idle_connections_are_bounded(server_factory):
    server = server_factory()
    connections = HostConnections(server.base_url, max_idle=2)
    held = [connections._connect(2.0) for _ in range(4)]
    for connection in held:
        connections._release(connection)
    assert len(connections._idle) == 2
    assert sum(c.sock is None for c in held) == 2  # the others were closed, not leaked


def test_nothing_listening_is_a_connect_failure_after_the_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here once the probe is closed
    connections = HostConnections(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectFailed) as failure:
        get(connections)
    assert failure.value.timed_out is False


def test_a_silent_vendor_is_a_read_timeout(server_factory):
    server = server_factory(lambda n: (time.sleep(1.0), OK)[1])
    connections = HostConnections(server.base_url)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(connections, read_timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert len(connections._idle) == 0  # a connection in an unknown state is never reused


@pytest.mark.parametrize(
    "reply,error",
    [
        (None, http.client.RemoteDisconnected),
        (OK[:-1], http.client.IncompleteRead),
        (b"garbage\r\n\r\n", http.client.BadStatusLine),
    ],
    ids=["dropped", "truncated", "not-http"],
)
def test_broken_answers_raise_and_close_the_connection(server_factory, reply, error):
    # The truncated answer needs its connection closed to end; the others end by themselves.
    server = server_factory(lambda n: reply, close_after_answer=True)
    connections = HostConnections(server.base_url)
    with pytest.raises(error):
        get(connections)
    assert len(connections._idle) == 0


def trickling_server():
    """Answers with headers at once, then one body byte every 0.2 s (10 bytes in all)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        sock, _ = listener.accept()
        with sock:
            while b"\r\n\r\n" not in sock.recv(65536):
                pass
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
            for _ in range(10):
                time.sleep(0.2)
                try:
                    sock.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_trickling_answer_cannot_outlast_the_deadline():
    listener = trickling_server()
    connections = HostConnections(f"http://127.0.0.1:{listener.getsockname()[1]}")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        # Each byte comes well within the read timeout; the whole body would take 2 s.
        connections.request(
            "GET",
            "/x",
            body=None,
            headers={},
            connect_timeout=1.0,
            read_timeout=1.0,
            deadline=started + 0.7,
        )
    assert 0.6 <= time.monotonic() - started < 1.2
    listener.close()


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "reply,body", [(OK, b"{}"), (CHUNKED, b"[1,2]")], ids=["length", "chunked"]
)
def test_an_answer_read_within_a_deadline_is_complete_and_its_connection_reused(
    server_factory, reply, body
):
    server = server_factory(lambda n: reply)
    connections = HostConnections(server.base_url)
    for _ in range(3):
        answer = connections.request(
            "GET",
            "/x",
            body=None,
            headers={},
            connect_timeout=1.0,
            read_timeout=1.0,
            deadline=time.monotonic() + 5,
        )
        assert (answer.status, answer.data) == (200, body)
    assert (server.connections, server.requests) == (1, 3)


def test_a_forked_child_opens_its_own_connections():
    registry = PerHost(lambda base_url: object())
    in_parent = registry("http://vendor.test")
    assert registry("http://vendor.test") is in_parent  # one per host and process
    pid = os.fork()
    if pid == 0:  # the child: a fresh object, never the parent's
        os._exit(0 if registry("http://vendor.test") is not in_parent else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_idle_check_works_for_sockets_numbered_above_1024(server_factory):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # as many descriptors as the hard limit allows; 2048 is plenty
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    server = server_factory(close_after_answer=True)
    connections = HostConnections(server.base_url)
    get(connections)
    idle = connections._idle[-1]
    high = os.dup2(idle.sock.fileno(), 2000)  # select() would refuse this descriptor
    try:
        idle.sock.close()
        idle.sock = socket.socket(fileno=high)
        time.sleep(0.05)  # the vendor's close has arrived
        assert get(connections).status == 200
        assert server.connections == 2  # the closed idle connection was noticed, not reused
    finally:
        idle.close()


@pytest.mark.parametrize(
    "reply,status,words",
    [
        (None, 502, "without an answer"),
        (OK[:-1], 502, "before its answer was complete"),
        (b"garbage\r\n\r\n", 502, "not HTTP"),
    ],
    ids=["dropped", "truncated", "not-http"],
)
def test_the_vendor_client_names_what_broke(server_factory, reply, status, words):
    from elements.framework.vendor import VendorClient, VendorError

    server = server_factory(lambda n: reply, close_after_answer=True)
    with pytest.raises(VendorError) as failure:
        VendorClient({"api": server.base_url}).request("POST", "api", "/x")  # not retried
    assert failure.value.status_code == status
    assert words in failure.value.message
    assert server.requests == 1
