"""The per-host bulkhead and circuit breaker (elements/framework/isolation.py) as a state
machine; through real HTTP in tests/test_vendor_faults.py and, under gunicorn,
tests/test_vendor_isolation.py."""

import time

import pytest

from elements.framework import isolation
from elements.framework.isolation import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    HostGuard,
    Refused,
    breaker_states,
    host_bound,
    host_guard,
)


@pytest.fixture
def guard_settings(settings):
    settings.PLATFORM = {
        **settings.PLATFORM,
        "VENDOR_BREAKER_FAILURES": 3,
        "VENDOR_BREAKER_COOLDOWN": 0.2,
        "VENDOR_HOST_MAX_IN_FLIGHT": 2,
    }
    return settings


def fail(guard, times=1):
    for _ in range(times):
        probe = guard.enter()
        guard.record(answered=False, probe=probe)
        guard.leave(probe=probe)


def test_the_bound_is_half_the_threads_unless_set(settings):
    settings.PLATFORM = {**settings.PLATFORM, "WEB_THREADS": 32, "VENDOR_HOST_MAX_IN_FLIGHT": 0}
    assert host_bound() == 16
    settings.PLATFORM = {**settings.PLATFORM, "WEB_THREADS": 1}
    assert host_bound() == 1
    settings.PLATFORM = {**settings.PLATFORM, "VENDOR_HOST_MAX_IN_FLIGHT": 5}
    assert host_bound() == 5


def test_past_the_bound_a_call_is_refused_at_once(guard_settings):
    guard = HostGuard("http://vendor.test")
    first, second = guard.enter(), guard.enter()
    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        guard.enter()
    assert time.monotonic() - started < 0.05
    assert refused.value.retry_after == 1 and "Too many calls" in refused.value.message
    guard.leave(probe=first)
    guard.leave(probe=guard.enter())  # a slot is free again
    guard.leave(probe=second)
    assert guard.in_flight == 0


def test_repeated_failures_open_the_breaker_and_answers_reset_the_count(guard_settings):
    guard = HostGuard("http://vendor.test")
    fail(guard, 2)
    probe = guard.enter()
    guard.record(answered=True, probe=probe)  # a vendor answer: the count starts over
    guard.leave(probe=probe)
    fail(guard, 2)
    assert guard.state == CLOSED
    fail(guard)
    assert guard.state == OPEN
    with pytest.raises(Refused) as refused:
        guard.enter()
    assert refused.value.retry_after == 1  # the cool-down left, rounded up
    assert "paused" in refused.value.message


def test_after_the_cooldown_one_probe_goes_through(guard_settings):
    guard = HostGuard("http://vendor.test")
    fail(guard, 3)
    time.sleep(0.25)
    probe = guard.enter()
    assert probe and guard.state == HALF_OPEN
    with pytest.raises(Refused) as refused:  # only one probe at a time
        guard.enter()
    assert "trial call" in refused.value.message
    guard.record(answered=True, probe=probe)
    guard.leave(probe=probe)
    assert guard.state == CLOSED
    assert guard.enter() is False  # closed again: ordinary calls


def test_a_failed_probe_opens_it_again_and_stragglers_change_nothing(guard_settings):
    guard = HostGuard("http://vendor.test")
    straggler = guard.enter()  # a call that was in flight when the breaker opened
    fail(guard, 3)
    guard.record(answered=False, probe=straggler)
    assert guard.state == OPEN
    opened_at = guard.opened_at
    guard.record(answered=False, probe=straggler)
    assert guard.opened_at == opened_at  # its timeout does not extend the cool-down
    time.sleep(0.25)
    probe = guard.enter()
    guard.record(answered=False, probe=probe)
    guard.leave(probe=probe)
    assert guard.state == OPEN and guard.opened_at > opened_at
    guard.leave(probe=straggler)


def test_a_probe_that_never_reached_the_host_lets_the_next_call_probe(guard_settings):
    guard = HostGuard("http://vendor.test")
    fail(guard, 3)
    time.sleep(0.25)
    probe = guard.enter()
    guard.leave(probe=probe)  # ended without an outcome
    assert guard.state == HALF_OPEN
    assert guard.enter() is True


def test_every_state_change_is_reported_per_host(guard_settings, monkeypatch):
    changes = []
    monkeypatch.setattr(
        isolation, "record_breaker_state", lambda host, state: changes.append((host, state))
    )
    guard = host_guard("http://reported.test")
    fail(guard, 3)
    assert breaker_states()["http://reported.test"] == "open"
    time.sleep(0.25)
    probe = guard.enter()
    assert breaker_states()["http://reported.test"] == "half_open"
    guard.record(answered=True, probe=probe)
    guard.leave(probe=probe)
    assert breaker_states() == {"http://reported.test": "closed"}
    assert changes == [
        ("http://reported.test", "open"),
        ("http://reported.test", "half_open"),
        ("http://reported.test", "closed"),
    ]
