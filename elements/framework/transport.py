"""Keep-alive connections to vendor hosts for request/response calls, on ``http.client``.

Every element call makes one such call while its caller waits, so its cost is the platform's
latency. On the platform's machine one call through ``http.client`` costs about half of one
through urllib3's pool (figures in docs/performance.md; ``bench.proxy_overhead`` shows
the difference end to end): urllib3 re-encodes the target, builds a header dict, a
Timeout, a Retry and a response wrapper on every call. What urllib3's pool did for these calls
is small and lives here: a bounded LIFO of idle connections per host, a stale-connection check
before reuse, separate connect and read timeouts, and connect retries (nothing was sent, so
they are always safe). Retries of answered or failed calls belong to ``vendor.VendorClient``,
which knows whether a call is idempotent.

Streaming exports (``VendorClient.stream_lines``) stay on a urllib3 pool, whose cost per call
does not matter there; ``vendor.LineStream`` gunzips and splits their lines.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import time
from collections import deque
from functools import cache, wraps
from urllib.parse import urlsplit

from platform_core.metrics import observe_vendor_request, vendor_host_label

CONNECT_RETRIES = 2
MAX_IDLE_PER_HOST = 32
# A body is read in pieces of at most this size, each within what is left of the deadline.
BODY_CHUNK = 256 * 1024


class ConnectFailed(Exception):
    """No connection could be opened (refused, unresolvable, or the connect timed out):
    nothing was sent."""

    def __init__(self, cause: OSError):
        super().__init__(type(cause).__name__)
        self.timed_out = isinstance(cause, TimeoutError)


class Answer:
    """A vendor's complete answer: status, headers (case-insensitive ``get``) and body."""

    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: http.client.HTTPMessage, data: bytes):
        self.status = status
        self.headers = headers
        self.data = data


def _readable(sock) -> bool:
    """Whether an idle socket has something to read: then the vendor closed it (or sent stray
    bytes), and either way it cannot carry a request. ``poll``, not ``select``: a busy process
    can hold sockets numbered above select's limit of 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


@cache
def _tls_context() -> ssl.SSLContext:
    # Certificates and host names verified against the system's trust store.
    return ssl.create_default_context()


def _send(connection, method, target, body, headers, read_timeout) -> None:
    """Write one request; a connection that failed to take it is closed."""
    try:
        connection.sock.settimeout(read_timeout)
        connection.request(method, target, body=body, headers=headers)
    except BaseException:
        connection.close()
        raise


def _timed(request):
    """Each vendor request's time, answered or failed, in the vendor latency histogram."""

    @wraps(request)
    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return request(self, *args, **kwargs)
        finally:
            observe_vendor_request(self.label, time.perf_counter() - started)

    return timed


def _read_answer(connection, read_timeout: float, deadline: float | None) -> Answer:
    """The whole answer. With a deadline, the body is read in pieces, each waiting at most
    what is left of it: a vendor trickling its answer cannot keep the call past the deadline."""
    sock = connection.sock  # http.client lets go of it when the answer says "close"
    response = connection.getresponse()
    if deadline is None:
        return Answer(response.status, response.headers, response.read())
    parts = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer was not complete before the deadline")
        sock.settimeout(min(read_timeout, left))
        part = response.read1(BODY_CHUNK)  # what one recv brings: read(n) waits for all n
        if not part:
            break
        parts.append(part)
    data = b"".join(parts)
    if response.length:  # read1, unlike read(), does not raise on a short body
        raise http.client.IncompleteRead(data, response.length)
    response.close()  # done with it (read() does this itself): the connection can be reused
    return Answer(response.status, response.headers, data)


class HostConnections:
    """The idle keep-alive connections to one ``scheme://host[:port]``.

    Thread-safe without a lock: ``deque.append`` and ``deque.pop`` are atomic. A connection is
    owned by one call from ``pop`` until it is put back or closed.
    """

    def __init__(self, base_url: str, *, max_idle: int = MAX_IDLE_PER_HOST):
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        self.label = vendor_host_label(base_url)  # the host in the vendor metrics
        self.max_idle = max_idle
        self._idle: deque[http.client.HTTPConnection] = deque()

    @_timed
    def request(
        self,
        method: str,
        target: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        connect_timeout: float,
        read_timeout: float,
        deadline: float | None = None,
    ) -> Answer:
        """Send one request and read the whole answer.

        Raises ``ConnectFailed`` when no connection could be opened, ``TimeoutError`` when the
        answer did not come within ``read_timeout``, or was not complete at ``deadline`` (a
        ``time.monotonic()`` value: no connect starts and no body read waits beyond it), and
        ``OSError`` or ``http.client.HTTPException`` when the connection broke or the answer
        was not HTTP.
        """
        connection = self._reusable()
        if connection is not None:
            try:
                _send(connection, method, target, body, headers, read_timeout)
            except ConnectionError:
                # The vendor had reset the idle connection before this request reached it (a
                # write fails only then), so it cannot have acted on it: send it again on a
                # fresh connection.
                connection = None
        if connection is None:
            connection = self._connect(connect_timeout, deadline)
            _send(connection, method, target, body, headers, read_timeout)
        try:
            answer = _read_answer(connection, read_timeout, deadline)
        except BaseException:
            connection.close()
            raise
        self._release(connection)
        return answer

    def _reusable(self) -> http.client.HTTPConnection | None:
        """The most recently used idle connection the vendor has not closed, if any."""
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:
                return None
            if not _readable(connection.sock):
                return connection
            connection.close()

    def _connect(self, timeout: float, deadline: float | None = None) -> http.client.HTTPConnection:
        if self.tls:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=_tls_context()
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        retries = CONNECT_RETRIES
        while True:
            try:
                connection.connect()
                return connection
            except OSError as exc:
                connection.close()
                left = None if deadline is None else deadline - time.monotonic()
                if not retries or (left is not None and left <= 0):
                    raise ConnectFailed(exc) from exc
                retries -= 1
                if left is not None:
                    connection.timeout = min(timeout, left)

    def _release(self, connection: http.client.HTTPConnection) -> None:
        # http.client drops the socket itself when the answer said "Connection: close".
        if connection.sock is None or len(self._idle) >= self.max_idle:
            connection.close()
        else:
            self._idle.append(connection)


class PerHost:
    """``make(base_url)`` once per vendor host and process, kept for the process's life (hosts
    are a small fixed set from the element definitions). A forked child starts empty, so it
    opens its own sockets rather than sharing its parent's."""

    def __init__(self, make):
        self.make = make
        self.made: dict = {}
        os.register_at_fork(after_in_child=self.made.clear)

    def __call__(self, base_url: str):
        found = self.made.get(base_url)
        if found is None:
            found = self.made.setdefault(base_url, self.make(base_url))
        return found


# This process's connections to one vendor host (``https://api.mixpanel.com``).
host_connections = PerHost(HostConnections)
