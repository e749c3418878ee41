"""Writes for events (contract §10): keeping pollers in step with configurations, polling,
and delivering notifications.

A poll: claim the poller's lease (a conditional UPDATE: one worker at a time), ask the
element's poller what changed since the committed state, then, in one transaction and only if
the lease is still ours and the instance still enabled, store the new events (a change already
stored under its version is dropped), group them into notifications of at most 10 and move the
state on. A worker that dies mid-poll commits nothing: its lease runs out and the poll is made
again from the same state. The first poll of an object is the baseline: its state is kept, its
changes are not notified.

A delivery: claim the notification (PENDING -> SENDING), POST it signed as bulk callbacks are
(bulk/callbacks.py: the same URL checks, signature and retry policy), and record the attempt.
A failed attempt is retried with exponential backoff up to EVENTS_DELIVERY_MAX_ATTEMPTS, then
the notification and its events are FAILED, kept for redelivery.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bulk.callbacks import (
    SIGNATURE_HEADER,
    CallbackRefused,
    check_callback_url,
    may_retry,
    post,
    sign,
)
from elements.framework import retry
from elements.framework.definition import SIGNATURE_KEY_FIELD
from elements.framework.dispatch import make_call, vendor_client
from elements.framework.polling import PollResult
from elements.framework.registry import element_by_key
from events import budget, queue
from events.checks import CALLBACK_URL, events_enabled, interval_seconds, polled_objects
from events.models import Delivery, Event, Notification, Poller
from events.representations import notification_body
from instances.crypto import CredentialsUnreadable, encrypt_text, reencrypt
from instances.models import Instance
from instances.services import configuration_of
from platform_core.conf import platform_settings

logger = logging.getLogger(__name__)

EVENTS_PER_NOTIFICATION = 10
WEBHOOK_ID_HEADER = "Elements-Webhook-Id"
USER_AGENT = "elements-platform-events/1.0"
MAX_BACKOFF = 3600.0
# A SENDING claim older than this belonged to a worker that died mid-POST.
STALE_SENDING = timedelta(minutes=5)


def _configuration(instance: Instance) -> dict | None:
    try:
        return configuration_of(instance)
    except CredentialsUnreadable:
        return None


def pollers_sync(*, instance: Instance) -> None:
    """One poller per polled object while events are enabled; none otherwise."""
    configuration = _configuration(instance) or {}
    try:
        element = element_by_key(instance.element_key)
    except Exception:  # an element no longer installed polls nothing
        element = None
    wanted = (
        polled_objects(element, configuration)
        if element is not None and events_enabled(configuration)
        else []
    )
    interval = interval_seconds(configuration)
    Poller.objects.filter(instance=instance).exclude(object_name__in=wanted).delete()
    for name in wanted:
        poller, created = Poller.objects.get_or_create(
            instance=instance,
            object_name=name,
            defaults={"interval_seconds": interval, "next_run_at": timezone.now()},
        )
        if not created and poller.interval_seconds != interval:
            # A shorter interval takes effect now, not after the old one.
            next_run_at = min(poller.next_run_at, timezone.now() + timedelta(seconds=interval))
            Poller.objects.filter(pk=poller.pk).update(
                interval_seconds=interval, next_run_at=next_run_at
            )


# --- polling ------------------------------------------------------------------------------


def _enabled_instances():
    return Instance.objects.filter(disabled=False).values("pk")


def _due_filter(now):
    # Conditions on the poller's own columns (and instance_id): a claim is one conditional
    # UPDATE, which PostgreSQL re-checks on the row it locks when two workers race for it.
    return Q(next_run_at__lte=now, instance_id__in=_enabled_instances()) & (
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )


def poller_claim(*, poller_id: int) -> str | None:
    """The lease token when this worker may poll now, else None."""
    now = timezone.now()
    owner = uuid.uuid4().hex
    lease = timedelta(seconds=platform_settings.EVENTS_POLL_LEASE_SECONDS)
    claimed = Poller.objects.filter(_due_filter(now), pk=poller_id).update(
        lease_owner=owner, lease_until=now + lease, queued_at=None
    )
    return owner if claimed else None


def poll(poller_id: int) -> str:
    """One poll of one (instance, object), if it is due and nobody else is polling it."""
    owner = poller_claim(poller_id=poller_id)
    if owner is None:
        return "not claimed"
    poller = Poller.objects.select_related("instance").get(pk=poller_id)
    instance = poller.instance
    configuration = _configuration(instance)
    element = element_by_key(instance.element_key)
    if configuration is None:
        _release(poller, owner, error="The instance's configuration cannot be read.")
        return "unreadable"
    if element.polling is None or poller.object_name not in element.polling.pollers:
        _release(poller, owner, error=f"{element.name} cannot poll {poller.object_name}.")
        return "not pollable"
    vendor = PollVendor(
        vendor_client(element, configuration, idempotent=True),
        poller_id=poller.pk,
        owner=owner,
        budget_key=element.polling.budget_key(configuration),
    )
    call = make_call(element, instance_id=instance.pk, configuration=configuration, vendor=vendor)
    try:
        result = element.polling.pollers[poller.object_name].poll(call, poller.state)
    except LeaseLost:
        _release(poller, owner, error="", failed=False)
        return "stopped"
    except budget.BudgetExhausted as exc:
        _release(poller, owner, next_run_at=exc.free_at, error=str(exc), failed=False)
        return "budget spent"
    except Exception as exc:  # noqa: BLE001 - a vendor failure is retried at the next interval
        logger.warning("poll of %s failed", poller, exc_info=True)
        _release(poller, owner, error=f"{type(exc).__name__}: {exc}"[:500])
        return "failed"
    return _commit(poller, owner, result)


class LeaseLost(Exception):
    """Another worker holds the poller's lease now, or the instance was disabled: this poll
    stops, committing nothing."""


class PollVendor:
    """The vendor as a poll uses it. Before each request the lease is renewed (a poll however
    long keeps it while it works; one that lost it stops) and one query is taken from the
    project's budget (budget.py)."""

    def __init__(self, vendor, *, poller_id: int, owner: str, budget_key: str):
        self.vendor = vendor
        self.poller_id = poller_id
        self.owner = owner
        self.budget_key = budget_key

    def _before_request(self) -> None:
        lease = timedelta(seconds=platform_settings.EVENTS_POLL_LEASE_SECONDS)
        # A poll of an instance disabled meanwhile stops before its next vendor request.
        renewed = Poller.objects.filter(
            pk=self.poller_id, lease_owner=self.owner, instance_id__in=_enabled_instances()
        ).update(lease_until=timezone.now() + lease)
        if not renewed:
            raise LeaseLost()
        budget.take(self.budget_key)

    def request(self, method: str, host: str, path: str, **options):
        self._before_request()
        return self.vendor.request(method, host, path, **options)

    def stream_lines(self, method: str, host: str, path: str, **options):
        self._before_request()
        return self.vendor.stream_lines(method, host, path, **options)


def _release(poller, owner, *, error="", next_run_at=None, failed=True) -> None:
    now = timezone.now()
    updates = {
        "lease_owner": "",
        "lease_until": None,
        "last_error": error,
        "next_run_at": next_run_at or now + timedelta(seconds=poller.interval_seconds),
    }
    if failed:
        updates["failures"] = poller.failures + 1
    Poller.objects.filter(pk=poller.pk, lease_owner=owner).update(**updates)


def _commit(poller: Poller, owner: str, result: PollResult) -> str:
    now = timezone.now()
    with transaction.atomic():
        locked = Poller.objects.select_for_update().filter(pk=poller.pk, lease_owner=owner).first()
        if locked is None:
            return "lease lost"
        # Disabled or deleted meanwhile: nothing of this poll counts.
        instance = Instance.objects.select_for_update().filter(pk=locked.instance_id).first()
        if instance is None or instance.disabled:
            Poller.objects.filter(pk=locked.pk).update(lease_owner="", lease_until=None)
            return "stopped"
        baseline = locked.state is None
        created: list[Event] = []
        if not baseline and result.changes:
            created = _store_events(instance, locked.object_name, result.changes)
        notifications = _group(instance, locked.object_name, created)
        Poller.objects.filter(pk=locked.pk).update(
            state=result.state,
            lease_owner="",
            lease_until=None,
            last_error="",
            failures=0,
            polls=locked.polls + 1,
            last_polled_at=now,
            next_run_at=now + timedelta(seconds=locked.interval_seconds),
        )
        for notification in notifications:
            transaction.on_commit(lambda pk=notification.pk: queue.enqueue_delivery(pk))
    if baseline:
        return "baseline"
    return f"{len(created)} new events"


def _store_events(instance: Instance, object_name: str, changes) -> list[Event]:
    """The changes not stored yet (by object id and version), stored."""
    by_key = {}
    for change in changes:
        key = (str(change.object_id)[:255], str(change.version)[:255])
        by_key.setdefault(key, change)
    known = set(
        Event.objects.filter(
            instance=instance,
            object_type=object_name,
            object_id__in=[object_id for object_id, _ in by_key],
        ).values_list("object_id", "version")
    )
    new = [
        Event(
            instance=instance,
            object_type=object_name,
            event_type=change.event_type,
            object_id=object_id,
            version=version,
            event_date=change.date,
            encrypted_record=encrypt_text(json.dumps(dict(change.record), default=str)),
        )
        for (object_id, version), change in by_key.items()
        if (object_id, version) not in known
    ]
    return Event.objects.bulk_create(new)


def _group(instance: Instance, object_name: str, events: list[Event]) -> list[Notification]:
    notifications = []
    for start in range(0, len(events), EVENTS_PER_NOTIFICATION):
        notification = Notification.objects.create(
            instance=instance, object_type=object_name, next_at=timezone.now()
        )
        chunk = events[start : start + EVENTS_PER_NOTIFICATION]
        Event.objects.filter(pk__in=[e.pk for e in chunk]).update(notification=notification)
        notifications.append(notification)
    return notifications


def tick() -> dict:
    """Queue every poll and delivery that is due (celery beat runs this). Queueing one twice is
    harmless: each is claimed on its row."""
    now = timezone.now()
    lease = timedelta(seconds=platform_settings.EVENTS_POLL_LEASE_SECONDS)
    not_queued = Q(queued_at__isnull=True) | Q(queued_at__lt=now - lease)
    polls = list(
        Poller.objects.filter(_due_filter(now), not_queued)
        .order_by("next_run_at")
        .values_list("pk", flat=True)[:1000]
    )
    Poller.objects.filter(pk__in=polls).update(queued_at=now)
    for pk in polls:
        queue.enqueue_poll(pk)
    Notification.objects.filter(
        status=Notification.Status.SENDING, next_at__lt=now - STALE_SENDING
    ).update(status=Notification.Status.PENDING)
    due = list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_at__lte=now)
        .order_by("next_at")
        .values_list("pk", flat=True)[:1000]
    )
    for pk in due:
        queue.enqueue_delivery(pk)
    return {"polls": len(polls), "deliveries": len(due)}


def events_purge() -> int:
    """Delete delivered events past EVENTS_RETENTION_DAYS, and their notifications. Failed
    ones are kept for redelivery."""
    cutoff = timezone.now() - timedelta(days=platform_settings.EVENTS_RETENTION_DAYS)
    purged, _ = Event.objects.filter(status=Event.Status.NOTIFIED, created_at__lt=cutoff).delete()
    Notification.objects.filter(
        status=Notification.Status.DELIVERED, created_at__lt=cutoff, events__isnull=True
    ).delete()
    return purged


# --- delivery -----------------------------------------------------------------------------


def backoff(attempt: int) -> float:
    """Seconds before the attempt after ``attempt`` (1-based)."""
    return retry.backoff_seconds(
        max(0, attempt - 1), platform_settings.EVENTS_DELIVERY_BACKOFF, cap=MAX_BACKOFF
    )


def _claim_delivery(notification_id: int) -> Notification | None:
    now = timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id,
        status=Notification.Status.PENDING,
        next_at__lte=now + timedelta(seconds=1),
    ).update(status=Notification.Status.SENDING, next_at=now)
    if not claimed:
        return None
    return Notification.objects.select_related("instance").get(pk=notification_id)


def deliver(notification_id: int) -> tuple[str, float | None]:
    """One delivery attempt; the outcome and, when it is to be retried, the delay."""
    notification = _claim_delivery(notification_id)
    if notification is None:
        return "not claimed", None
    attempt = notification.attempts + 1
    instance = notification.instance
    configuration = _configuration(instance) or {}
    url = configuration.get(CALLBACK_URL)
    if not url:
        _settle(notification, attempt, Delivery.Status.FAILED, None, "No callback URL is set.")
        return "failed", None
    try:
        target = check_callback_url(str(url))
    except CallbackRefused as exc:
        _settle(notification, attempt, Delivery.Status.FAILED, None, f"The callback URL {exc}.")
        return "refused", None
    events = list(notification.events.order_by("pk"))
    body = json.dumps(
        notification_body(notification, events), separators=(",", ":"), default=str
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        WEBHOOK_ID_HEADER: str(notification.message_id),
    }
    key = configuration.get(SIGNATURE_KEY_FIELD)
    if key:
        headers[SIGNATURE_HEADER] = sign(body, str(key))
    status, error, answer_headers = None, "", {}
    try:
        status, answer_headers = post(
            target, body, headers, platform_settings.EVENTS_DELIVERY_TIMEOUT
        )
        failure = retry.failure_of_status(status)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the receiver is retried
        failure = retry.Failure.CLOSED_UNANSWERED
        error = f"{type(exc).__name__}: {exc}"[:500]
    if status is not None and 200 <= status < 300:
        _settle(notification, attempt, Delivery.Status.DELIVERED, status, "")
        return "delivered", None
    error = error or f"HTTP {status}"
    if not may_retry(failure) or attempt >= platform_settings.EVENTS_DELIVERY_MAX_ATTEMPTS:
        _settle(notification, attempt, Delivery.Status.FAILED, status, error)
        return "failed", None
    asked = retry.retry_after_seconds(answer_headers)
    delay = min(asked, MAX_BACKOFF) if asked is not None else backoff(attempt)
    _settle(
        notification,
        attempt,
        Delivery.Status.RETRY,
        status,
        error,
        next_at=timezone.now() + timedelta(seconds=delay),
    )
    return "retry", delay


def _settle(notification, attempt, outcome, response_status, error, next_at=None) -> None:
    status = {
        Delivery.Status.DELIVERED: Notification.Status.DELIVERED,
        Delivery.Status.RETRY: Notification.Status.PENDING,
        Delivery.Status.FAILED: Notification.Status.FAILED,
    }[outcome]
    updates = {"status": status, "attempts": attempt, "last_error": error}
    if status == Notification.Status.DELIVERED:
        updates["delivered_at"] = timezone.now()
    if next_at is not None:
        updates["next_at"] = next_at
    with transaction.atomic():
        settled = Notification.objects.filter(
            pk=notification.pk, status=Notification.Status.SENDING
        ).update(**updates)
        if not settled:
            return
        Delivery.objects.create(
            notification=notification,
            attempt=attempt,
            status=outcome,
            response_status=response_status,
            error=error,
        )
        event_status = {
            Notification.Status.DELIVERED: Event.Status.NOTIFIED,
            Notification.Status.FAILED: Event.Status.FAILED,
        }.get(status)
        if event_status:
            notification.events.update(status=event_status)
    if outcome != Delivery.Status.DELIVERED:
        logger.info("notification %s: attempt %s: %s", notification.pk, attempt, error)


def event_redeliver(*, event: Event) -> Event:
    """Send the event's notification again (a delivered one too). One being sent is left."""
    if event.notification_id is None:
        notification = Notification.objects.create(
            instance_id=event.instance_id, object_type=event.object_type, next_at=timezone.now()
        )
        Event.objects.filter(pk=event.pk).update(notification=notification)
    else:
        notification = event.notification
        Notification.objects.filter(
            pk=notification.pk,
            status__in=[Notification.Status.DELIVERED, Notification.Status.FAILED],
        ).update(status=Notification.Status.PENDING, attempts=0, next_at=timezone.now())
    transaction.on_commit(lambda: queue.enqueue_delivery(notification.pk))
    event.refresh_from_db()
    return event


def records_reencrypt() -> tuple[int, int]:
    """Every event's record under the first key of CREDENTIALS_KEYS: (rewritten, unreadable)."""
    rewritten = unreadable = 0
    pending = Event.objects.exclude(encrypted_record="").order_by("pk")
    for event in pending.only("pk", "encrypted_record").iterator(chunk_size=500):
        try:
            token = reencrypt(event.encrypted_record)
        except CredentialsUnreadable:
            unreadable += 1
            continue
        if token != event.encrypted_record:
            Event.objects.filter(pk=event.pk).update(encrypted_record=token)
        rewritten += 1
    return rewritten, unreadable
