"""The events API's objects and the notification body (contract §10)."""

from __future__ import annotations

import json

from events.models import Event, Notification
from instances.crypto import CredentialsUnreadable, decrypt_text


def event_record(event: Event) -> dict:
    """The vendor's record of the change; empty when no configured key reads it any more."""
    if not event.encrypted_record:
        return {}
    try:
        return json.loads(decrypt_text(event.encrypted_record))
    except CredentialsUnreadable:
        return {}


def _iso(moment) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment is not None else None


def delivery_representation(delivery) -> dict:
    return {
        "attempt": delivery.attempt,
        "date": _iso(delivery.date),
        "status": delivery.status,
        "responseStatus": delivery.response_status,
    }


def event_representation(event: Event) -> dict:
    notification = event.notification
    deliveries = list(notification.deliveries.all()) if notification is not None else []
    return {
        "id": str(event.pk),
        "instanceId": event.instance_id,
        "eventDate": _iso(event.event_date),
        "createdDate": _iso(event.created_at),
        "status": event.status,
        "objectType": event.object_type,
        "eventType": event.event_type,
        "objectId": event.object_id,
        "notificationId": str(notification.message_id) if notification is not None else None,
        "deliveries": [delivery_representation(d) for d in deliveries],
    }


def notification_body(notification: Notification, events: list[Event]) -> dict:
    instance = notification.instance
    element_key = instance.element_key
    return {
        "message": {
            "eventId": str(notification.message_id),
            "elementKey": element_key,
            "instanceId": instance.pk,
            "instanceName": instance.name,
            "events": [
                {
                    "id": str(event.pk),
                    "elementKey": element_key,
                    "eventType": event.event_type,
                    "objectId": event.object_id,
                    "objectType": event.object_type,
                    "date": _iso(event.event_date),
                }
                for event in events
            ],
            # What the vendor showed for each change (CE: the poller's payload).
            "raw": {
                "objectType": notification.object_type,
                notification.object_type: [event_record(event) for event in events],
            },
        }
    }
