"""The HTTP client every element uses to reach its vendor.

Request/response calls go through ``transport`` (keep-alive ``http.client`` connections: on the
element-call hot path they cost about half of urllib3's pool); streaming exports go through one
process-wide urllib3 pool per host, and hand the element its lines (``LineStream``).

A request/response call:

- ends within a ``Deadline`` (``VENDOR_CALL_DEADLINE``; an element call's covers every vendor
  request it makes): each attempt's connect and read timeouts are capped by what is left, and a
  retry (with its wait) starts only if what is left has room for it;
- is tried again as ``retry.ERROR_MAPPING`` says (idempotent calls on 429/5xx and broken
  connections, any call whose connection never opened), with exponential backoff and jitter or
  the vendor's ``Retry-After``;
- passes its host's bulkhead and circuit breaker first (``isolation``): refused there, it is a
  503 with ``Retry-After`` and the vendor is not called.

Vendor failures become the contract's statuses (§2), as ``retry.ERROR_MAPPING`` says: timeouts
504, unreachable or garbage 502, vendor 5xx 502, vendor 429 429 with ``Retry-After``, other
vendor 4xx keep their status; each with ``providerMessage``/``providerStatus`` when the vendor
answered.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

import orjson
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from elements.framework import retry
from elements.framework.isolation import Refused, host_guard
from elements.framework.retry import ERROR_MAPPING, Failure
from elements.framework.transport import ConnectFailed, PerHost, host_connections
from platform_core.conf import platform_settings
from platform_core.exceptions import PlatformError

logger = logging.getLogger(__name__)

# Streams: urllib3's own retries cover only connections that never opened (nothing was sent,
# so always safe); status-based retries are ours, below, because they depend on idempotency.
CONNECT_ONLY = urllib3.Retry(
    total=None,
    connect=2,
    read=0,
    redirect=0,
    status=0,
    other=0,
    respect_retry_after_header=False,
    raise_on_status=False,
)
# RFC 3986 path characters, and "%" so that an already-encoded path stays as it is.
PATH_SAFE = "/:@!$&'()*+,;=-._~%"
MAX_PROVIDER_MESSAGE = 1000
USER_AGENT = "elements-platform/1.0"
# A retry is worth starting only with at least this long left before the deadline.
MIN_ATTEMPT_SECONDS = 0.1


class VendorError(PlatformError):
    """The vendor failed, answered garbage or refused; rendered in the contract's error shape."""

    status_code = 502
    default_detail = "The vendor failed."


class VendorTimeout(VendorError):
    status_code = 504
    default_detail = "The vendor did not answer in time."


class VendorUnreachable(VendorError):
    status_code = 502
    default_detail = "The vendor could not be reached."


class VendorGarbage(VendorError):
    status_code = 502
    default_detail = "The vendor answered with a body that could not be understood."


class VendorUnavailable(VendorError):
    """Not called: too many calls to its host are in flight, or the host's breaker is open."""

    status_code = 503
    default_detail = "The vendor is unavailable; retry later."


# The exception of each failure that is not an answer (statuses and messages: ERROR_MAPPING).
FAILURE_ERRORS: dict[Failure, type[VendorError]] = {
    Failure.CONNECT_FAILED: VendorUnreachable,
    Failure.CONNECT_TIMEOUT: VendorTimeout,
    Failure.READ_TIMEOUT: VendorTimeout,
    Failure.CLOSED_UNANSWERED: VendorUnreachable,
    Failure.ANSWER_CUT_SHORT: VendorUnreachable,
    Failure.NOT_HTTP: VendorGarbage,
}


class Deadline:
    """When the vendor's part of a call must be over: ``seconds`` from now, by default
    ``VENDOR_CALL_DEADLINE`` less the platform's share (``answer_margin``), so that the answer
    itself, a 504 included, leaves within the deadline."""

    __slots__ = ("started", "at")

    def __init__(self, seconds: float | None = None):
        self.started = time.monotonic()
        if seconds is None:
            seconds = platform_settings.VENDOR_CALL_DEADLINE
            seconds -= answer_margin(seconds)
        self.at = self.started + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def waited(self) -> float:
        return time.monotonic() - self.started


def answer_margin(deadline: float) -> float:
    """The end of a deadline the platform keeps to compose and send its answer once the vendor's
    time is up: 5 % of it, at most 0.25 s (a loaded web process needs tens of milliseconds)."""
    return min(0.25, deadline * 0.05)


# The urllib3 connection pool of one vendor host, for streaming exports. The host's own pool,
# not a pool manager: that skips URL parsing on every call.
host_pool = PerHost(
    lambda base_url: urllib3.connection_from_url(base_url, maxsize=32, block=False, retries=False)
)


@dataclass
class VendorResponse:
    status: int
    headers: Mapping[str, str]
    data: bytes
    url_path: str

    def json(self):
        try:
            # orjson refuses what the platform could not pass on (lone surrogates, NaN).
            return orjson.loads(self.data)
        except orjson.JSONDecodeError as exc:
            raise VendorGarbage(
                "The vendor answered with a body that is not JSON.",
                provider_status=self.status,
                provider_message=_snippet(self.data),
            ) from exc

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _snippet(data: bytes) -> str:
    text = data[:MAX_PROVIDER_MESSAGE].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def provider_message(response: VendorResponse) -> str:
    """The vendor's own words: its JSON ``error``/``message`` field, else the start of the body."""
    try:
        body = json.loads(response.data)
    except (ValueError, UnicodeDecodeError):
        return _snippet(response.data)
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str):
                return body[key][:MAX_PROVIDER_MESSAGE]
    return _snippet(response.data)


STREAM_CHUNK_BYTES = 256 * 1024
# The most bytes one gunzip step may produce (a small gzip chunk can inflate to any size).
INFLATE_STEP_BYTES = 4 * 1024 * 1024


class LineStream:
    """A vendor's streamed answer, one line at a time (bytes, without the newline), or block by
    block (``blocks``), gunzipped here when the vendor compressed it: memory stays at one chunk
    whatever the answer's size.

    Use it as a context manager: leaving it early (an error, a stop) closes the connection,
    as unread data must not go back to the pool; a stream read to its end returns it. A stream
    that stalls raises ``VendorTimeout``; one cut off, or a broken gzip stream,
    ``VendorUnreachable``.

    Decoding here rather than urllib3's ``decode_content``: one ``zlib`` object over 256 KiB
    reads, then one ``split`` per chunk, is the cheapest way to lines in Python."""

    def __init__(self, response):
        self._response = response
        self._finished = False

    def __enter__(self) -> LineStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if not self._finished:
            self._response.close()
        self._response.release_conn()

    def __iter__(self) -> Iterator[bytes]:
        for block in self.blocks():
            lines = block.split(b"\n")
            lines.pop()  # a block ends with its last line's newline
            yield from lines

    def blocks(self) -> Iterator[bytes]:
        """The answer in blocks of whole lines, each ending with a newline (one is added to a
        last line without one): a block is at most one read, gunzipped (4 MiB at most), so a
        consumer can decode and copy many lines per call instead of one.

        Read in the consumer's thread: a thread reading and gunzipping ahead made a bulk job
        8-13 % slower. It needs the interpreter lock after every read and every inflate while
        the consumer holds it in C calls of a few ms, so the two take turns, not overlap."""
        return self._blocks()

    def _blocks(self) -> Iterator[bytes]:
        response = self._response
        gzipped = response.headers.get("Content-Encoding", "").lower() == "gzip"
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
        pending = b""
        try:
            for chunk in response.stream(STREAM_CHUNK_BYTES, decode_content=False):
                while chunk:
                    if decompressor is not None:
                        data = decompressor.decompress(chunk, INFLATE_STEP_BYTES)
                        chunk = decompressor.unconsumed_tail
                    else:
                        data, chunk = chunk, b""
                    end = data.rfind(b"\n") + 1
                    if not end:
                        pending += data
                        continue
                    # One copy: the line left over from the last step and this step's lines.
                    yield b"".join((pending, memoryview(data)[:end]))
                    pending = data[end:]
            if decompressor is not None:
                pending += decompressor.flush()
        except ReadTimeoutError as exc:
            raise VendorTimeout("The vendor's stream stalled.") from exc
        except (OSError, ValueError, zlib.error, HTTPError) as exc:
            # Connection cut, body cut mid-stream, or a broken gzip stream.
            raise VendorUnreachable("The vendor's stream broke off.") from exc
        self._finished = True
        if pending:
            yield pending + b"\n"


def raise_for_status(response: VendorResponse) -> VendorResponse:
    failure = retry.failure_of_status(response.status)
    if failure is None:
        return response
    resolution = ERROR_MAPPING[failure]
    headers = None
    if failure is Failure.RATE_LIMITED:
        retry_after = retry.retry_after_seconds(response.headers) or 60
        headers = {"Retry-After": str(int(retry_after + 0.999))}
    raise VendorError(
        resolution.message.format(status=response.status),
        status_code=resolution.caller_status or response.status,
        provider_status=response.status,
        provider_message=provider_message(response),
        headers=headers,
    )


class Vendor(Protocol):
    """What a handler or bulk source may call: ``VendorClient``, or a wrapper of one (the bulk
    runner's, which reads its job's row before each request; a test's fake)."""

    def request(self, method: str, host: str, path: str, **options) -> VendorResponse: ...

    def stream_lines(self, method: str, host: str, path: str, **options) -> LineStream: ...


class VendorClient:
    """Requests to one instance's vendor hosts (``{"api": "https://api.mixpanel.com", ...}``).

    With a ``deadline`` (an element call's), every request ends by it; without one (a bulk
    job's client, used for hours), each request gets a deadline of its own.

    ``auth_headers`` (from the element's authentication strategy) go with every request unless
    it says ``authenticate=False``; ``idempotent`` (the operation's) says whether a request may
    be retried after it was sent, unless the request says otherwise. ``dispatch.vendor_client``
    builds it for an element and a configuration."""

    def __init__(
        self,
        hosts: Mapping[str, str],
        *,
        deadline: Deadline | None = None,
        auth_headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ):
        self.hosts = hosts
        self.deadline = deadline
        self.auth_headers = auth_headers or {}
        self.idempotent = idempotent

    @staticmethod
    def _target(path: str, query: Mapping | None) -> str:
        """The request target: path (characters a URL cannot carry percent-encoded, as a path
        segment built from an input may hold them) and query string."""
        path = quote(path, safe=PATH_SAFE)
        if query:
            return (
                path
                + "?"
                + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
            )
        return path

    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        query: Mapping | None = None,
        json_body=None,
        form: Mapping | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        auth: str | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> VendorResponse:
        """One vendor call, retried where safe. ``check`` raises on vendor 4xx/5xx.

        ``authenticate=False``: a request the vendor authenticates otherwise (Mixpanel's
        project token in the body). ``idempotent``: only for a request whose safety depends on
        its data (an import batch without deduplication keys); by default the operation's.
        ``auth``: an ``Authorization`` value of the caller's (tools and tests with no element).
        """
        base_url = self.hosts[host].rstrip("/")
        target = self._target(path, query)
        send_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if authenticate:
            send_headers.update(self.auth_headers)
        if auth:
            send_headers["Authorization"] = auth
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = "application/json"
        elif form is not None:
            body = urlencode(form, doseq=True).encode()
            content_type = "application/x-www-form-urlencoded"
        if content_type:
            send_headers["Content-Type"] = content_type
        if headers:
            send_headers.update(headers)
        deadline = self.deadline or Deadline()
        guard = host_guard(base_url)
        try:
            probe = guard.enter()
        except Refused as refused:
            raise VendorUnavailable(
                refused.message, headers={"Retry-After": str(refused.retry_after)}
            ) from None
        try:
            response = self._send(
                base_url,
                method,
                target,
                path,
                body,
                send_headers,
                idempotent=self.idempotent if idempotent is None else idempotent,
                read_timeout=timeout or platform_settings.VENDOR_READ_TIMEOUT,
                deadline=deadline,
                guard=guard,
                probe=probe,
            )
        finally:
            guard.leave(probe=probe)
        return raise_for_status(response) if check else response

    def stream_lines(
        self,
        method: str,
        host: str,
        path: str,
        *,
        query: Mapping | None = None,
        headers: Mapping[str, str] | None = None,
        gzip: bool = True,
    ) -> LineStream:
        """A streamed answer (bulk exports) as its lines: see ``LineStream``. Asks for gzip
        unless ``gzip=False``. Retries only the opening of the connection (nothing was sent);
        a vendor 4xx/5xx raises as ``request`` does."""
        connection_pool = host_pool(self.hosts[host].rstrip("/"))
        target = self._target(path, query)
        send_headers = {
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "gzip" if gzip else "identity",
            **self.auth_headers,
        }
        if headers:
            send_headers.update(headers)
        try:
            response = connection_pool.urlopen(
                method,
                target,
                headers=send_headers,
                timeout=self._timeout(None),
                retries=CONNECT_ONLY,
                preload_content=False,
                decode_content=False,
            )
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise VendorTimeout() from exc
        except (MaxRetryError, NewConnectionError, ProtocolError, HTTPError) as exc:
            raise VendorUnreachable() from exc
        if response.status >= 400:
            data = response.read(decode_content=True)
            response.release_conn()
            raise_for_status(VendorResponse(response.status, response.headers, data, path))
        return LineStream(response)

    @staticmethod
    def _timeout(read: float | None) -> urllib3.Timeout:
        return urllib3.Timeout(
            connect=platform_settings.VENDOR_CONNECT_TIMEOUT,
            read=read or platform_settings.VENDOR_READ_TIMEOUT,
        )

    def _send(
        self,
        base_url,
        method,
        target,
        path,
        body,
        headers,
        *,
        idempotent: bool,
        read_timeout: float,
        deadline: Deadline,
        guard,
        probe: bool,
    ) -> VendorResponse:
        """The attempts of one request within ``deadline``: the vendor's answer (any status),
        or the ``VendorError`` of the last attempt, which got none."""
        connections = host_connections(base_url)
        retries = 0
        while True:
            left = deadline.left()
            if left <= 0:  # earlier requests of this element call used it up
                raise VendorTimeout(retry.NOT_ANSWERED_IN_TIME.format(waited=deadline.waited()))
            response = None
            try:
                answer = connections.request(
                    method,
                    target,
                    body=body,
                    headers=headers,
                    connect_timeout=min(platform_settings.VENDOR_CONNECT_TIMEOUT, left),
                    read_timeout=min(read_timeout, left),
                    deadline=deadline.at,
                )
            except ConnectFailed as exc:
                failure = retry.failure_of_exception(exc, connect_timed_out=exc.timed_out)
                cause: Exception = exc
            except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
                failure = retry.failure_of_exception(exc)
                cause = exc
            else:
                response = VendorResponse(answer.status, answer.headers, answer.data, path)
                # The path only: query strings and bodies may carry credentials.
                logger.debug("vendor %s %s -> %s", method, path, answer.status)
                failure = retry.failure_of_status(answer.status)
                if failure is None:
                    guard.record(answered=True, probe=probe)
                    return response
            resolution = ERROR_MAPPING[failure]
            guard.record(answered=not resolution.counts_against_host, probe=probe)
            wait = _retry_wait(resolution, response, idempotent, retries, deadline, guard)
            if wait is None:
                if response is not None:
                    return response
                raise FAILURE_ERRORS[failure](
                    resolution.message.format(waited=deadline.waited()),
                    status_code=resolution.caller_status,
                ) from cause
            logger.info("vendor %s %s: %s; retry in %.2fs", method, path, failure.value, wait)
            time.sleep(wait)
            retries += 1


def _retry_wait(resolution, response, idempotent, retries, deadline, guard) -> float | None:
    """Seconds to wait before trying again, or None when the call must not be tried again: the
    policy forbids it, the retries are used up, the host's breaker has opened, the vendor asks
    for a longer wait than ``VENDOR_MAX_RETRY_AFTER``, or the deadline has no room for it."""
    if (
        not resolution.allows_retry(idempotent=idempotent)
        or retries >= platform_settings.VENDOR_MAX_RETRIES
        or guard.is_open()
    ):
        return None
    wait = None if response is None else retry.retry_after_seconds(response.headers)
    if wait is None:
        wait = retry.backoff_seconds(retries, platform_settings.VENDOR_BACKOFF_FACTOR)
    elif wait > platform_settings.VENDOR_MAX_RETRY_AFTER:
        return None  # the vendor asks for longer than a caller should wait
    if wait + MIN_ATTEMPT_SECONDS > deadline.left():
        return None
    return wait
