"""The HTTP client every element uses to reach its vendor.

Request/response calls go through ``transport`` (keep-alive ``http.client`` connections: on the
element-call hot path they cost about half of urllib3's pool); streaming exports go through one
process-wide urllib3 pool per host, for its incremental gzip decoding. Connect and read
timeouts on both, and bounded retries with exponential backoff that honour ``Retry-After``,
only where a retry cannot duplicate an effect (idempotent calls; a connection that never opened
is always safe).

Vendor failures become the contract's statuses (§2): timeouts 504, unreachable or garbage 502,
vendor 5xx 502, vendor 429 429 with ``Retry-After``, other vendor 4xx keep their status; each
with ``providerMessage``/``providerStatus`` when the vendor answered.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
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

from elements.framework.transport import ConnectFailed, PerHost, host_connections
from platform_core.conf import platform_settings
from platform_core.exceptions import PlatformError

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
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


# The urllib3 connection pool of one vendor host, for streaming exports. The host's own pool,
# not a pool manager: that skips URL parsing on every call.
host_pool = PerHost(
    lambda base_url: urllib3.connection_from_url(base_url, maxsize=32, block=False, retries=False)
)


def basic_auth(username: str, password: str = "") -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


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


def raise_for_status(response: VendorResponse) -> VendorResponse:
    status = response.status
    if status < 400:
        return response
    message = provider_message(response)
    if status == 429:
        retry_after = _retry_after_seconds(response.headers) or 60
        raise VendorError(
            "The vendor rate-limited this call; retry later.",
            status_code=429,
            provider_status=status,
            provider_message=message,
            headers={"Retry-After": str(int(retry_after + 0.999))},
        )
    if status >= 500:
        raise VendorError(
            f"The vendor failed with HTTP {status}.",
            status_code=502,
            provider_status=status,
            provider_message=message,
        )
    raise VendorError(
        f"The vendor refused the call with HTTP {status}.",
        status_code=status,
        provider_status=status,
        provider_message=message,
    )


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: rare from APIs; fall back to our own backoff


def _broken_answer(exc: Exception) -> VendorError:
    """The error for a connection that broke, or an answer that was cut short or not HTTP."""
    if isinstance(exc, http.client.IncompleteRead):
        return VendorUnreachable("The vendor closed the connection before its answer was complete.")
    if isinstance(exc, OSError):  # reset, or closed unanswered (RemoteDisconnected is one)
        return VendorUnreachable("The vendor closed the connection without an answer.")
    return VendorGarbage("The vendor answered with something that is not HTTP.")


class VendorClient:
    """Requests to one instance's vendor hosts (``{"api": "https://api.mixpanel.com", ...}``)."""

    def __init__(self, hosts: Mapping[str, str]):
        self.hosts = hosts

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
        auth: str | None = None,
        idempotent: bool = False,
        timeout: float | None = None,
        check: bool = True,
    ) -> VendorResponse:
        """One vendor call, retried where safe. ``check`` raises on vendor 4xx/5xx."""
        connections = host_connections(self.hosts[host].rstrip("/"))
        target = self._target(path, query)
        send_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
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
        response = self._send(
            connections, method, target, path, body, send_headers, idempotent, timeout
        )
        return raise_for_status(response) if check else response

    def stream(self, method: str, host: str, path: str, *, query=None, auth=None, headers=None):
        """A streaming GET (bulk exports): returns the urllib3 response, unread. Retries only
        the opening of the connection; the caller reads and closes it."""
        connection_pool = host_pool(self.hosts[host].rstrip("/"))
        target = self._target(path, query)
        send_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
        if auth:
            send_headers["Authorization"] = auth
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
                decode_content=True,
            )
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise VendorTimeout() from exc
        except (MaxRetryError, NewConnectionError, ProtocolError, HTTPError) as exc:
            raise VendorUnreachable() from exc
        if response.status >= 400:
            data = response.read()
            response.release_conn()
            raise_for_status(VendorResponse(response.status, response.headers, data, path))
        return response

    @staticmethod
    def _timeout(read: float | None) -> urllib3.Timeout:
        return urllib3.Timeout(
            connect=platform_settings.VENDOR_CONNECT_TIMEOUT,
            read=read or platform_settings.VENDOR_READ_TIMEOUT,
        )

    def _send(
        self, connections, method, target, path, body, headers, idempotent, timeout
    ) -> VendorResponse:
        max_retries = platform_settings.VENDOR_MAX_RETRIES if idempotent else 0
        backoff = platform_settings.VENDOR_BACKOFF_FACTOR
        cap = platform_settings.VENDOR_MAX_RETRY_AFTER
        attempt = 0
        while True:
            try:
                answer = connections.request(
                    method,
                    target,
                    body=body,
                    headers=headers,
                    connect_timeout=platform_settings.VENDOR_CONNECT_TIMEOUT,
                    read_timeout=timeout or platform_settings.VENDOR_READ_TIMEOUT,
                )
                response = VendorResponse(answer.status, answer.headers, answer.data, path)
                # The path only: query strings and bodies may carry credentials.
                logger.debug("vendor %s %s -> %s", method, path, answer.status)
            except ConnectFailed as exc:
                error: VendorError = VendorTimeout() if exc.timed_out else VendorUnreachable()
                cause: Exception = exc
            except TimeoutError as exc:
                error = VendorTimeout()
                cause = exc
            except (OSError, http.client.HTTPException) as exc:
                error = _broken_answer(exc)
                cause = exc
            else:
                if response.status not in RETRY_STATUSES or attempt >= max_retries:
                    return response
                delay = _retry_after_seconds(response.headers)
                if delay is None:
                    delay = backoff * (2**attempt) * (1 + random.random() / 2)
                if delay > cap:
                    return response  # the vendor asks for longer than a caller should wait
                logger.info(
                    "vendor %s %s -> %s; retry in %.2fs", method, path, response.status, delay
                )
                time.sleep(delay)
                attempt += 1
                continue
            if attempt >= max_retries:
                raise error from cause
            time.sleep(backoff * (2**attempt) * (1 + random.random() / 2))
            attempt += 1
