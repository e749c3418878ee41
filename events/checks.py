"""The events keys of an instance configuration (contract §10), checked with the rest of it
(``elements.framework.configuration.register_check``): enabling needs a callback URL, which is
checked as bulk callbacks are; ``event.objects`` names objects the element can poll."""

from bulk.callbacks import CallbackRefused, check_callback_url
from elements.framework.definition import Element

ENABLED = "event.notification.enabled"
VENDOR_TYPE = "event.vendor.type"
CALLBACK_URL = "event.notification.callback.url"
INTERVAL = "event.poller.refresh_interval"
OBJECTS = "event.objects"
DEFAULT_INTERVAL_MINUTES = 15.0
EVENT_KEYS = (ENABLED, VENDOR_TYPE, CALLBACK_URL, INTERVAL, OBJECTS)


def events_enabled(configuration: dict) -> bool:
    return configuration.get(ENABLED) is True


def interval_seconds(configuration: dict) -> float:
    minutes = configuration.get(INTERVAL)
    return float(minutes if minutes is not None else DEFAULT_INTERVAL_MINUTES) * 60


def polled_objects(element: Element, configuration: dict) -> list[str]:
    """The objects to poll: ``event.objects`` or every pollable object of the element."""
    pollable = list(element.polling.pollers) if element.polling is not None else []
    text = configuration.get(OBJECTS)
    if not text:
        return pollable
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    return [name for name in dict.fromkeys(names) if name in pollable]


def check_event_configuration(element: Element, configuration: dict) -> list[dict]:
    errors = []
    pollable = list(element.polling.pollers) if element.polling is not None else []
    text = configuration.get(OBJECTS)
    if text:
        names = [name.strip() for name in str(text).split(",") if name.strip()]
        unknown = [name for name in names if name not in pollable]
        if unknown or not names:
            errors.append(
                {
                    "field": OBJECTS,
                    "message": f"{', '.join(unknown)[:200] or 'no object'}: pollable objects "
                    f"are {', '.join(pollable) or 'none'}",
                }
            )
    url = configuration.get(CALLBACK_URL)
    if url:
        try:
            check_callback_url(str(url))
        except CallbackRefused as exc:
            errors.append({"field": CALLBACK_URL, "message": str(exc)})
    if events_enabled(configuration):
        if element.polling is None:
            errors.append({"field": ENABLED, "message": f"{element.name} has no events"})
        if not url:
            errors.append({"field": CALLBACK_URL, "message": "is required when events are enabled"})
    return errors
