"""Job-end callbacks (contract §6): the final status object POSTed to the caller's URL.

The URL is checked when the job is submitted and again right before each delivery: http or
https, a host that resolves, and, unless ``CALLBACK_ALLOW_PRIVATE_NETWORKS``, only globally
reachable addresses (no private, loopback, link-local, multicast, reserved or unspecified ones;
an IPv6 address that embeds an IPv4 one, as 6to4, Teredo, NAT64 and IPv4-mapped addresses do,
is judged by that IPv4 address too). The
request goes to the address that was checked (no second DNS lookup that could answer
differently), and redirects are not followed.

The body is signed ``Elements-Webhook-Signature: sha256=<base64 HMAC-SHA256(body)>`` with the
instance's ``event.notification.signature.key``; without that key it is sent unsigned.
Delivery is claimed on the job row (PENDING -> SENDING -> DELIVERED) and a delivered callback
is never sent again. A failed delivery is retried as the one retry policy says
(``elements/framework/retry.py``; a delivery is idempotent): no answer, 429 and 5xx are
retried with exponential backoff or the receiver's ``Retry-After``, a 3xx (redirects are not
followed) or another 4xx ends it FAILED at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.utils import timezone

from bulk.models import BulkJob
from bulk.representations import job_representation
from elements.framework import retry
from elements.framework.definition import SIGNATURE_KEY_FIELD
from instances.crypto import CredentialsUnreadable
from instances.services import configuration_of
from platform_core.conf import platform_settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Elements-Webhook-Signature"
MAX_URL_LENGTH = 2000
USER_AGENT = "elements-platform-callbacks/1.0"
Callback = BulkJob.Callback
CALLBACK_NOT_SENT = "Not sent: the element instance was deleted, and its signature key with it."


class CallbackRefused(ValueError):
    """A callback URL the platform will not call."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str
    path: str


# IPv6 ranges that embed an IPv4 address which is where the traffic really goes.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d (RFC 4291)
# Not globally reachable (IANA special-purpose registry), though Python before 3.11.10 / 3.12.4
# calls them global: 6to4 ("N/A"; relays are deprecated, RFC 7526), local-use NAT64 (where the
# IPv4 sits depends on the operator's prefix length), the IPv6 documentation range 3fff::/20.
NOT_GLOBAL_IPV6 = (
    ipaddress.IPv6Network("2002::/16"),
    NAT64_LOCAL_USE,
    ipaddress.IPv6Network("3fff::/20"),
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped, IPv4-compatible, 6to4, Teredo
    (server and the de-obfuscated client), NAT64 (well-known /96, and the local-use /48 read
    with RFC 6052's /48 layout)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    value = int(ip)
    if ip in NAT64_WELL_KNOWN or (ip in IPV4_COMPATIBLE and value > 1):
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in NAT64_LOCAL_USE:
        # bits 48-63 and 72-87 (bits 64-71 are the "u" octet).
        found.append(ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF))
    return found


def _not_global(ip) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
        or (ip.version == 6 and any(ip in network for network in NOT_GLOBAL_IPV6))
    )


def refusal_reason(ip) -> str | None:
    """Why a callback may not go to ``ip`` (None when it is globally reachable). An IPv6
    address that embeds an IPv4 one is judged by both: the IPv4 address is where a relay or
    translator delivers the request."""
    if ip.version == 4:
        return (
            None
            if not _not_global(ip)
            else f"{ip}, a private, loopback, link-local or reserved address"
        )
    embedded = embedded_ipv4(ip)
    for inner in embedded:
        if _not_global(inner):
            return (
                f"{ip}, which embeds {inner}, a private, loopback, link-local or reserved address"
            )
    # IPv4-mapped and well-known NAT64 addresses are only a way of writing their IPv4 address,
    # which was judged above; every other IPv6 address must be globally reachable itself.
    if ip.ipv4_mapped is not None or ip in NAT64_WELL_KNOWN:
        return None
    if _not_global(ip):
        return f"{ip}, an address that is not globally reachable"
    return None


def check_callback_url(url: str, *, allow_private: bool | None = None) -> Target:
    """The address to call for ``url``, or CallbackRefused saying why not."""
    if allow_private is None:
        allow_private = platform_settings.CALLBACK_ALLOW_PRIVATE_NETWORKS
    if not url or len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise CallbackRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CallbackRefused("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise CallbackRefused("must be an http or https URL")
    host = parts.hostname
    if not host:
        raise CallbackRefused("has no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("must not carry credentials")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise CallbackRefused(f"host {host} does not resolve") from None
    addresses = []
    for info in infos:
        text = info[4][0].split("%", 1)[0]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        reason = None if allow_private else refusal_reason(ip)
        if reason:
            raise CallbackRefused(f"host {host} resolves to {reason}")
        addresses.append(text)
    if not addresses:
        raise CallbackRefused(f"host {host} does not resolve")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port, address=addresses[0], path=path)


def sign(body: bytes, key: str) -> str:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


def post(target: Target, body: bytes, headers: dict, timeout: float) -> tuple[int, Mapping]:
    """POST to the checked address; the Host header and TLS name are the URL's host. The
    receiver's status and headers."""
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    kwargs = {
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            **kwargs,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **kwargs)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header},
            redirect=False,
            assert_same_host=False,
            preload_content=True,
        )
        return response.status, response.headers
    finally:
        pool.close()


MAX_BACKOFF = 3600.0


def backoff(attempt: int) -> float:
    """Seconds before the delivery after attempt number ``attempt`` (1-based)."""
    return retry.backoff_seconds(
        max(0, attempt - 1), platform_settings.BULK_CALLBACK_BACKOFF, cap=MAX_BACKOFF
    )


def may_retry(failure: retry.Failure | None) -> bool:
    """Whether a failed delivery may be made again: the one retry policy (retry.py), a
    delivery being idempotent (the same body again). No answer at all, the receiver's 429 and
    5xx are retried; a 4xx is its considered answer, and so is a 3xx (redirects are not
    followed), which the policy, made for answers that are no failure, leaves as None."""
    return failure is not None and retry.ERROR_MAPPING[failure].allows_retry(idempotent=True)


def claim_delivery(job_id: int) -> BulkJob | None:
    now = timezone.now()
    claimed = BulkJob.objects.filter(
        pk=job_id,
        callback_status=Callback.PENDING,
        callback_next_at__lte=now + timedelta(seconds=1),
    ).update(callback_status=Callback.SENDING, callback_next_at=now)
    if not claimed:
        return None
    return BulkJob.objects.select_related("instance").get(pk=job_id)


def deliver(job_id: int) -> tuple[str, float | None]:
    """One delivery attempt. Returns the outcome and, when it should be retried, the delay."""
    job = claim_delivery(job_id)
    if job is None:
        return "not claimed", None
    attempt = job.callback_attempts + 1
    if job.instance is None:  # deleted while this delivery was being claimed
        _settle(job, Callback.FAILED, attempt, CALLBACK_NOT_SENT)
        return "failed", None
    error = ""
    try:
        target = check_callback_url(job.callback_url)
    except CallbackRefused as exc:
        _settle(job, Callback.FAILED, attempt, f"The callback URL {exc}.")
        return "refused", None
    body = json.dumps(job_representation(job), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        key = configuration_of(job.instance).get(SIGNATURE_KEY_FIELD)
    except CredentialsUnreadable:
        key = None
    if key:
        headers[SIGNATURE_HEADER] = sign(body, str(key))
    answer_headers: Mapping = {}
    try:
        status, answer_headers = post(
            target, body, headers, platform_settings.BULK_CALLBACK_TIMEOUT
        )
        failure = retry.failure_of_status(status)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the receiver is retried
        status = None
        failure = retry.Failure.CLOSED_UNANSWERED
        error = f"{type(exc).__name__}: {exc}"[:500]
    if status is not None and 200 <= status < 300:
        _settle(job, Callback.DELIVERED, attempt, "")
        return "delivered", None
    error = error or f"HTTP {status}"
    if not may_retry(failure) or attempt >= platform_settings.BULK_CALLBACK_MAX_ATTEMPTS:
        _settle(job, Callback.FAILED, attempt, error)
        return "failed", None
    asked = retry.retry_after_seconds(answer_headers)
    delay = min(asked, MAX_BACKOFF) if asked is not None else backoff(attempt)
    next_at = timezone.now() + timedelta(seconds=delay)
    _settle(job, Callback.PENDING, attempt, error, next_at=next_at)
    logger.info("bulk job %s: callback attempt %s failed (%s)", job.pk, attempt, error)
    return "retry", delay


def _settle(job: BulkJob, status: str, attempt: int, error: str, next_at=None) -> None:
    updates = {
        "callback_status": status,
        "callback_attempts": attempt,
        "callback_last_error": error,
    }
    if status == Callback.DELIVERED:
        updates["callback_delivered_at"] = timezone.now()
    if next_at is not None:
        updates["callback_next_at"] = next_at
    BulkJob.objects.filter(pk=job.pk, callback_status=Callback.SENDING).update(**updates)
