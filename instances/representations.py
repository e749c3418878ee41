"""Translation between the API's JSON and instances: the request body schema and the
response shape of seed 002."""

from elements.framework.catalog import ELEMENT_SUMMARY_SCHEMA, element_summary
from elements.framework.configuration import masked_configuration
from elements.framework.registry import element_by_key
from instances.models import Instance
from platform_core.openapi import component

TAG = {"type": "string", "minLength": 1, "maxLength": 100}

# Keys of the instance representation a client may send back on PUT/PATCH; they are ignored.
READ_ONLY_KEYS = {
    "id",
    "createdDate",
    "token",
    "elementId",
    "provisionInteractions",
    "valid",
    "disabled",
    "maxCacheSize",
    "cacheTimeToLive",
    "eventsEnabled",
    "cachingEnabled",
    "externalAuthentication",
    "user",
}

_WRITABLE = {
    "element": {
        "type": "object",
        "properties": {
            "key": {"type": "string", "minLength": 1, "maxLength": 64},
            "id": {"type": "integer"},
        },
        "minProperties": 1,
    },
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "configuration": {"type": "object", "maxProperties": 100},
    "tags": {"type": "array", "items": TAG, "maxItems": 50},
    "traceLoggingEnabled": {"type": "boolean"},
}
_READ_ONLY_SCHEMAS = {key: {} for key in READ_ONLY_KEYS}

INSTANCE_CREATE_SCHEMA = {
    "type": "object",
    "properties": _WRITABLE,
    "required": ["element", "name", "configuration"],
    "additionalProperties": False,
}

INSTANCE_PUT_SCHEMA = {
    "type": "object",
    "properties": {**_WRITABLE, **_READ_ONLY_SCHEMAS},
    "required": ["name", "configuration"],
    "additionalProperties": False,
}

INSTANCE_PATCH_SCHEMA = {
    "type": "object",
    "properties": {**_WRITABLE, **_READ_ONLY_SCHEMAS},
    "additionalProperties": False,
}


def iso_utc(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_representation(instance: Instance, *, configuration: dict, token: str) -> dict:
    element = element_by_key(instance.element_key)
    return {
        "id": instance.pk,
        "name": instance.name,
        "createdDate": iso_utc(instance.created_at),
        "token": token,
        "element": element_summary(element),
        "elementId": element.id,
        "tags": list(instance.tags),
        "provisionInteractions": [],
        "valid": instance.valid,
        "disabled": instance.disabled,
        "maxCacheSize": 0,
        "cacheTimeToLive": 0,
        "configuration": masked_configuration(element, configuration),
        "eventsEnabled": configuration.get("event.notification.enabled") is True,
        "traceLoggingEnabled": instance.trace_logging_enabled,
        "cachingEnabled": False,
        "externalAuthentication": "none",
        "user": {"id": instance.user_id, "emailAddress": instance.user.email},
    }


INSTANCE_SCHEMA = component(
    "Instance",
    {
        "type": "object",
        "required": sorted(READ_ONLY_KEYS | {"name", "element", "configuration", "tags"}),
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "createdDate": {"type": "string", "format": "date-time"},
            "token": {"type": "string", "description": "The instance token (header Element)."},
            "element": ELEMENT_SUMMARY_SCHEMA,
            "elementId": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "provisionInteractions": {"type": "array"},
            "valid": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "maxCacheSize": {"type": "integer"},
            "cacheTimeToLive": {"type": "integer"},
            "configuration": {
                "type": "object",
                "description": "Every field the element marks secret reads ********.",
            },
            "eventsEnabled": {"type": "boolean"},
            "traceLoggingEnabled": {"type": "boolean"},
            "cachingEnabled": {"type": "boolean"},
            "externalAuthentication": {"type": "string"},
            "user": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "emailAddress": {"type": "string"}},
            },
        },
    },
)
