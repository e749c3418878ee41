"""What keeps one vendor host from taking a web process down with it: per host and process, a
bound on calls in flight (a bulkhead) and a circuit breaker.

A gthread worker keeps accepting requests when all its threads are busy, and queues them behind
the busy ones: if every thread waited on a hanging vendor, the platform's own endpoints would
wait with them. So a host may hold at most ``VENDOR_HOST_MAX_IN_FLIGHT`` of a process's threads
(by default half of ``WEB_THREADS``, the threads gunicorn gives each worker); one call more is
refused at once, with 503 and ``Retry-After``, rather than queued.

The breaker: after ``VENDOR_BREAKER_FAILURES`` attempts in a row that got no answer from the host
(timeouts, connection failures: ``retry.ERROR_MAPPING``'s ``counts_against_host``; a vendor's 4xx
or 5xx is an answer and resets the count), the host is *open* for ``VENDOR_BREAKER_COOLDOWN``
seconds: calls fail at once with 503 and ``Retry-After`` (the cool-down left). Then it is
*half open*: one call goes through as a probe while the others are still refused; an answer
closes the breaker, another failure opens it again. Outcomes of calls that were already in
flight when it opened do not change it (a hanging host's stuck calls all end as timeouts).

Both are per process (each gunicorn worker learns on its own): nothing to share or to lose.
``breaker_states()`` tells each host's state; every change goes through ``HostGuard._become``,
which also sets the host's breaker gauge of ``GET /metrics`` (``platform_core.metrics``).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from elements.framework.transport import PerHost
from platform_core.conf import platform_settings
from platform_core.metrics import record_breaker_state

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# What a caller refused while a probe is out is told to wait: the probe decides soon.
PROBE_RETRY_AFTER = 1
BUSY_RETRY_AFTER = 1


class Refused(Exception):
    """The call was not let through to the host (``vendor.VendorUnavailable``, a 503)."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


def host_bound() -> int:
    """How many calls one vendor host may have in flight in this process."""
    configured = platform_settings.VENDOR_HOST_MAX_IN_FLIGHT
    return configured if configured > 0 else max(1, platform_settings.WEB_THREADS // 2)


class HostGuard:
    """The bulkhead and the breaker of one vendor host (``scheme://host[:port]``)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.lock = threading.Lock()
        self.in_flight = 0
        self.state = CLOSED
        self.failures = 0  # attempts in a row without an answer, while closed
        self.opened_at = 0.0
        self.probe_out = False

    def enter(self) -> bool:
        """Admit one call or raise ``Refused``; returns whether it is the probe of a
        half-open breaker. Every admitted call must ``leave``."""
        cooldown = platform_settings.VENDOR_BREAKER_COOLDOWN
        with self.lock:
            probe = False
            if self.state == OPEN:
                left = self.opened_at + cooldown - time.monotonic()
                if left > 0:
                    raise Refused(
                        "The vendor is not answering (timeouts or connection failures); calls "
                        f"to it are paused for {left:.0f} more s.",
                        retry_after=max(1, math.ceil(left)),
                    )
                self._become(HALF_OPEN)
            if self.state == HALF_OPEN:
                if self.probe_out:
                    raise Refused(
                        "The vendor is not answering; a trial call is checking whether it is back.",
                        retry_after=PROBE_RETRY_AFTER,
                    )
                probe = True
            if self.in_flight >= host_bound():
                raise Refused(
                    "Too many calls to this vendor are waiting for it; retry later.",
                    retry_after=BUSY_RETRY_AFTER,
                )
            self.in_flight += 1
            self.probe_out = self.probe_out or probe
            return probe

    def leave(self, *, probe: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            if probe and self.probe_out:
                # The probe ended without an outcome (it never reached the host): let the next
                # call probe instead.
                self.probe_out = False

    def record(self, *, answered: bool, probe: bool) -> None:
        """The outcome of one attempt: the host answered (whatever it said) or it did not."""
        with self.lock:
            if self.state == CLOSED:
                if answered:
                    self.failures = 0
                    return
                self.failures += 1
                if self.failures >= platform_settings.VENDOR_BREAKER_FAILURES:
                    self._become(OPEN)
            elif self.state == HALF_OPEN and probe:
                self.probe_out = False
                self._become(CLOSED if answered else OPEN)

    def is_open(self) -> bool:
        return self.state == OPEN

    def _become(self, state: str) -> None:
        """The one place a breaker changes state (the lock is held)."""
        previous, self.state = self.state, state
        self.failures = 0
        if state == OPEN:
            self.opened_at = time.monotonic()
        log = logger.warning if state == OPEN else logger.info
        log("vendor host %s: circuit breaker %s -> %s", self.base_url, previous, state)
        record_breaker_state(self.base_url, state)


# This process's guard of each vendor host.
host_guard = PerHost(HostGuard)


def breaker_states() -> dict[str, str]:
    """Each vendor host this process has called, with its breaker's state:
    ``"closed"``, ``"open"`` or ``"half_open"`` (an open breaker turns half open at the first
    call after its cool-down, and shows open until then)."""
    return {base_url: guard.state for base_url, guard in list(host_guard.made.items())}
