"""The one retry policy of vendor calls: what each way a call can fail means.

``ERROR_MAPPING`` says, for each kind of failed attempt (in the spirit of Airbyte's
``DEFAULT_ERROR_MAPPING``): whether it may be tried again (never, only when the call is
idempotent, or always because nothing reached the vendor), the status and message the
platform's caller sees when it is the call's last word, and whether it counts against the
vendor host's circuit breaker (the host did not answer at all: timeouts and connection
failures, never a vendor's own answer). How long to wait comes from ``retry_after_seconds``
and ``backoff_seconds``.

Three places apply it: the vendor client to each request (``elements/framework/vendor.py``),
the bulk runner to a failed page, which it reads again from the committed checkpoint
(``retry_failed_call``: a bulk job only reads, so idempotent), and job-end callbacks to each
delivery (``bulk/callbacks.py``: the same body again, so idempotent too).
"""

from __future__ import annotations

import enum
import http.client
import random
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import InvalidHeader


class Failure(enum.Enum):
    CONNECT_FAILED = "connect_failed"  # refused or unresolvable: nothing was sent
    CONNECT_TIMEOUT = "connect_timeout"  # no connection in time: nothing was sent
    READ_TIMEOUT = "read_timeout"  # sent, no complete answer in time
    CLOSED_UNANSWERED = "closed_unanswered"  # sent, the connection closed or reset
    ANSWER_CUT_SHORT = "answer_cut_short"  # the answer stopped before its announced length
    NOT_HTTP = "not_http"  # something came back, but not an HTTP answer
    RATE_LIMITED = "rate_limited"  # 429
    VENDOR_UNAVAILABLE = "vendor_unavailable"  # 500, 502, 503, 504: often gone on a retry
    VENDOR_FAILED = "vendor_failed"  # another 5xx (501, 505, ...): a retry would fail alike
    REFUSED = "refused"  # another 4xx: the vendor's considered answer


class RetryWhen(enum.Enum):
    NEVER = "never"
    IDEMPOTENT = "idempotent"  # the vendor may have acted on the request
    ALWAYS = "always"  # the request never left: trying again cannot duplicate anything


@dataclass(frozen=True)
class Resolution:
    retry: RetryWhen
    caller_status: int | None  # None: the vendor's own status is passed on
    counts_against_host: bool  # a circuit-breaker failure (elements/framework/isolation.py)
    # Formatted with ``waited`` (seconds since the call began) and ``status`` (the vendor's).
    message: str

    def allows_retry(self, *, idempotent: bool) -> bool:
        return self.retry is RetryWhen.ALWAYS or (self.retry is RetryWhen.IDEMPOTENT and idempotent)


NOT_ANSWERED_IN_TIME = "The vendor did not answer within {waited:.1f} s."

ERROR_MAPPING: dict[Failure, Resolution] = {
    Failure.CONNECT_FAILED: Resolution(
        RetryWhen.ALWAYS, 502, True, "The vendor could not be reached."
    ),
    Failure.CONNECT_TIMEOUT: Resolution(RetryWhen.ALWAYS, 504, True, NOT_ANSWERED_IN_TIME),
    Failure.READ_TIMEOUT: Resolution(RetryWhen.IDEMPOTENT, 504, True, NOT_ANSWERED_IN_TIME),
    Failure.CLOSED_UNANSWERED: Resolution(
        RetryWhen.IDEMPOTENT, 502, True, "The vendor closed the connection without an answer."
    ),
    Failure.ANSWER_CUT_SHORT: Resolution(
        RetryWhen.IDEMPOTENT,
        502,
        True,
        "The vendor closed the connection before its answer was complete.",
    ),
    Failure.NOT_HTTP: Resolution(
        RetryWhen.IDEMPOTENT, 502, False, "The vendor answered with something that is not HTTP."
    ),
    Failure.RATE_LIMITED: Resolution(
        RetryWhen.IDEMPOTENT, 429, False, "The vendor rate-limited this call; retry later."
    ),
    Failure.VENDOR_UNAVAILABLE: Resolution(
        RetryWhen.IDEMPOTENT, 502, False, "The vendor failed with HTTP {status}."
    ),
    Failure.VENDOR_FAILED: Resolution(
        RetryWhen.NEVER, 502, False, "The vendor failed with HTTP {status}."
    ),
    Failure.REFUSED: Resolution(
        RetryWhen.NEVER, None, False, "The vendor refused the call with HTTP {status}."
    ),
}

RETRIED_SERVER_STATUSES = frozenset({500, 502, 503, 504})


def failure_of_status(status: int) -> Failure | None:
    """The failure a vendor's status means; None for an answer that is not one (< 400)."""
    if status < 400:
        return None
    if status == 429:
        return Failure.RATE_LIMITED
    if status in RETRIED_SERVER_STATUSES:
        return Failure.VENDOR_UNAVAILABLE
    if status >= 500:
        return Failure.VENDOR_FAILED
    return Failure.REFUSED


def failure_of_exception(exc: BaseException, *, connect_timed_out: bool | None = None) -> Failure:
    """The failure an exception of ``elements/framework/transport.py`` means.
    ``connect_timed_out`` is set when no connection could be opened (its ``ConnectFailed``)."""
    if connect_timed_out is not None:
        return Failure.CONNECT_TIMEOUT if connect_timed_out else Failure.CONNECT_FAILED
    if isinstance(exc, TimeoutError):
        return Failure.READ_TIMEOUT
    if isinstance(exc, http.client.IncompleteRead):
        return Failure.ANSWER_CUT_SHORT
    if isinstance(exc, OSError):  # reset, or closed unanswered (RemoteDisconnected is one)
        return Failure.CLOSED_UNANSWERED
    return Failure.NOT_HTTP


# urllib3 reads both forms of Retry-After (RFC 9110 §10.2.3): delay-seconds and an HTTP-date.
_RETRY_AFTER_READER = urllib3.Retry(0)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (0 for a date in the past);
    None when there is none or it cannot be read."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return _RETRY_AFTER_READER.parse_retry_after(value)
    except InvalidHeader:
        return None


def backoff_seconds(retry: int, factor: float, *, cap: float | None = None) -> float:
    """The wait before retry number ``retry`` (0-based): exponential from ``factor`` (at most
    ``cap``), with up to half again of jitter so that callers that failed together do not
    return together."""
    base = factor * (2 ** min(retry, 32))
    if cap is not None:
        base = min(base, cap)
    return base * (1 + random.random() / 2)


def failure_of_error(caller_status: int, provider_status: int | None) -> Failure | None:
    """The failure a finished call's error stands for, from the status the platform's caller
    got and the vendor's own (None when the vendor never answered, or answered a status that
    was no failure but a body that was): the vendor's when it is a failure, else the caller's
    (504: no answer in time; 502 and 503: no usable answer, or not called; 429; a 4xx)."""
    if provider_status is not None and provider_status >= 400:
        return failure_of_status(provider_status)
    return failure_of_status(caller_status)


def retry_failed_call(caller_status: int, provider_status: int | None) -> bool:
    """Whether a read whose vendor call failed this way may be made again (a bulk job's page:
    the vendor client has already retried its requests; this decides the job's next try)."""
    failure = failure_of_error(caller_status, provider_status)
    return failure is not None and ERROR_MAPPING[failure].allows_retry(idempotent=True)
