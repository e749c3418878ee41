"""The bulk runner and job-end callbacks retry as the one retry policy says
(elements/framework/retry.py)."""

import email.utils
import time

import pytest
from django.utils import timezone

from bulk import callbacks, runner
from bulk.models import BulkJob
from elements.framework.retry import Failure
from elements.framework.vendor import VendorError, VendorTimeout, VendorUnreachable
from tests.test_bulk_live import Receiver
from tests.test_bulk_runner import FakeSource, instance, make_job, media, run  # noqa: F401

pytestmark = pytest.mark.django_db


def test_the_runner_retries_what_the_policy_retries():
    assert runner.is_retryable(VendorError("limited", status_code=429, provider_status=429))
    assert runner.is_retryable(VendorTimeout())
    assert runner.is_retryable(VendorUnreachable("The vendor's stream broke off."))
    assert not runner.is_retryable(VendorError("no", status_code=403, provider_status=403))


def test_the_runner_waits_as_retry_after_says_in_seconds_or_as_a_date(settings):
    settings.PLATFORM = {**settings.PLATFORM, "BULK_RETRY_BACKOFF": 2.0}
    assert runner.retry_delay(VendorError("x", headers={"Retry-After": "7"}), 1) == 7
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3 <= runner.retry_delay(VendorError("x", headers={"Retry-After": in_five}), 1) <= 5
    # No Retry-After: exponential backoff from BULK_RETRY_BACKOFF, jittered.
    assert 4 <= runner.retry_delay(VendorError("x"), 2) <= 6


def test_callbacks_retry_no_answer_429_and_5xx_only():
    assert callbacks.may_retry(Failure.CLOSED_UNANSWERED)
    assert callbacks.may_retry(Failure.RATE_LIMITED)
    assert callbacks.may_retry(Failure.VENDOR_UNAVAILABLE)
    assert not callbacks.may_retry(Failure.REFUSED)
    assert not callbacks.may_retry(None)  # a 3xx: redirects are not followed


def test_a_receivers_4xx_fails_the_callback_at_once(instance, settings):  # noqa: F811
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    receiver = Receiver(statuses=(404,))
    try:
        job = make_job(instance, callback_url=receiver.url)
        run(job, FakeSource(pages=1))
        assert callbacks.deliver(job.pk) == ("failed", None)
    finally:
        receiver.close()
    job.refresh_from_db()
    assert job.callback_status == BulkJob.Callback.FAILED
    assert job.callback_last_error == "HTTP 404" and job.callback_attempts == 1


def test_a_receivers_5xx_is_retried_after_backoff(instance, settings):  # noqa: F811
    settings.PLATFORM = {
        **settings.PLATFORM,
        "CALLBACK_ALLOW_PRIVATE_NETWORKS": True,
        "BULK_CALLBACK_BACKOFF": 30.0,
    }
    receiver = Receiver(statuses=(500, 200))
    try:
        job = make_job(instance, callback_url=receiver.url)
        run(job, FakeSource(pages=1))
        outcome, delay = callbacks.deliver(job.pk)
        assert outcome == "retry" and 30 <= delay <= 45
        job.refresh_from_db()
        assert job.callback_next_at > timezone.now()
    finally:
        receiver.close()
