"""Reads for the events API: a user sees the events of their own instances only."""

from __future__ import annotations

from django.db.models import Prefetch

from events.models import Delivery, Event


def _events_of(user_id: int):
    return (
        Event.objects.filter(instance__user_id=user_id)
        .select_related("notification")
        .prefetch_related(
            Prefetch("notification__deliveries", queryset=Delivery.objects.order_by("pk"))
        )
    )


def event_list(
    *,
    user_id: int,
    instance_id: int | None = None,
    status: str | None = None,
    object_type: str | None = None,
    after_id: int = 0,
    limit: int,
) -> list[Event]:
    events = _events_of(user_id).filter(pk__gt=after_id)
    if instance_id is not None:
        events = events.filter(instance_id=instance_id)
    if status:
        events = events.filter(status=status)
    if object_type:
        events = events.filter(object_type=object_type)
    return list(events.order_by("pk")[:limit])


def event_get(*, user_id: int, event_id: int, instance_id: int | None = None) -> Event | None:
    events = _events_of(user_id).filter(pk=event_id)
    if instance_id is not None:
        events = events.filter(instance_id=instance_id)
    return events.first()
