"""The retry policy table and its timing helpers (elements/framework/retry.py)."""

import email.utils
import http.client
import time

import pytest

from elements.framework.retry import (
    ERROR_MAPPING,
    Failure,
    RetryWhen,
    backoff_seconds,
    failure_of_exception,
    failure_of_status,
    retry_after_seconds,
)


def test_every_failure_has_a_resolution():
    assert set(ERROR_MAPPING) == set(Failure)


@pytest.mark.parametrize(
    "status,failure,caller_status",
    [
        (200, None, None),
        (302, None, None),
        (400, Failure.REFUSED, None),
        (404, Failure.REFUSED, None),
        (429, Failure.RATE_LIMITED, 429),
        (500, Failure.VENDOR_UNAVAILABLE, 502),
        (503, Failure.VENDOR_UNAVAILABLE, 502),
        (504, Failure.VENDOR_UNAVAILABLE, 502),
        (501, Failure.VENDOR_FAILED, 502),
    ],
)
def test_vendor_statuses(status, failure, caller_status):
    assert failure_of_status(status) is failure
    if failure is not None:
        assert ERROR_MAPPING[failure].caller_status == caller_status


@pytest.mark.parametrize(
    "exc,connect_timed_out,failure",
    [
        (ConnectionRefusedError(), False, Failure.CONNECT_FAILED),
        (TimeoutError(), True, Failure.CONNECT_TIMEOUT),
        (TimeoutError(), None, Failure.READ_TIMEOUT),
        (http.client.IncompleteRead(b"x", 5), None, Failure.ANSWER_CUT_SHORT),
        (http.client.RemoteDisconnected(), None, Failure.CLOSED_UNANSWERED),
        (ConnectionResetError(), None, Failure.CLOSED_UNANSWERED),
        (http.client.BadStatusLine("garbage"), None, Failure.NOT_HTTP),
    ],
)
def test_exceptions(exc, connect_timed_out, failure):
    assert failure_of_exception(exc, connect_timed_out=connect_timed_out) is failure


def test_who_may_retry_what():
    never_sent = ERROR_MAPPING[Failure.CONNECT_FAILED]
    assert never_sent.allows_retry(idempotent=False) and never_sent.counts_against_host
    read_timeout = ERROR_MAPPING[Failure.READ_TIMEOUT]
    assert read_timeout.retry is RetryWhen.IDEMPOTENT
    assert read_timeout.allows_retry(idempotent=True)
    assert not read_timeout.allows_retry(idempotent=False)
    assert read_timeout.caller_status == 504 and read_timeout.counts_against_host
    refused = ERROR_MAPPING[Failure.REFUSED]
    assert not refused.allows_retry(idempotent=True) and not refused.counts_against_host
    # The vendor answering, however badly, is not a reason to open its breaker.
    for failure in (Failure.RATE_LIMITED, Failure.VENDOR_UNAVAILABLE, Failure.NOT_HTTP):
        assert not ERROR_MAPPING[failure].counts_against_host


def test_timeout_messages_say_how_long_the_call_waited():
    message = ERROR_MAPPING[Failure.READ_TIMEOUT].message.format(waited=25.04)
    assert message == "The vendor did not answer within 25.0 s."


def test_retry_after_in_seconds_and_as_a_date():
    assert retry_after_seconds({"Retry-After": "7"}) == 7
    assert retry_after_seconds({"Retry-After": " 0 "}) == 0
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= retry_after_seconds({"Retry-After": in_ten}) <= 10
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert retry_after_seconds({"Retry-After": past}) == 0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_grows_exponentially_with_jitter():
    for retry in range(4):
        waits = [backoff_seconds(retry, 0.5) for _ in range(50)]
        base = 0.5 * 2**retry
        assert all(base <= wait <= base * 1.5 for wait in waits)
        assert len(set(waits)) > 1  # jittered


def test_backoff_is_capped():
    assert all(10 <= backoff_seconds(40, 5.0, cap=10) <= 15 for _ in range(20))


def test_a_failed_read_is_tried_again_as_the_table_says():
    from elements.framework.retry import retry_failed_call

    assert retry_failed_call(429, 429)  # rate limited
    assert retry_failed_call(502, 503)  # the vendor was unavailable
    assert retry_failed_call(504, None)  # no answer in time
    assert retry_failed_call(502, None)  # unreachable, or a stream cut short
    assert retry_failed_call(502, 200)  # answered a body that could not be read
    assert retry_failed_call(503, None)  # not called: the host's breaker was open
    assert not retry_failed_call(401, 401)  # the vendor's considered refusal
    assert not retry_failed_call(502, 501)  # a 5xx that a retry would meet again
    assert not retry_failed_call(400, None)  # the platform's own refusal
