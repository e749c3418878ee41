"""Element representations for the catalog (contract §4) and inside instances (§3)."""

from elements.framework.definition import CONFIG_TYPES, Element, Operation
from elements.framework.requirements import needs_representation
from platform_core.openapi import component


def config_field_representation(field) -> dict:
    return {
        "key": field.key,
        "name": field.name,
        "type": field.type,
        "required": field.required,
        "secret": field.secret,
        "defaultValue": field.default,
        "description": field.description,
        **({"choices": list(field.choices)} if field.choices else {}),
    }


def resource_representation(element: Element, op: Operation) -> dict:
    if op.path:
        path = f"/hubs/{element.hub}{op.path}"
    else:
        path = f"/{element.key}/{op.name}/{{instanceId}}"
    parameters = []
    required = set(op.input_schema.get("required", ()))
    for name, spec in op.input_schema.get("properties", {}).items():
        parameters.append(
            {
                "name": name,
                "type": op.location_of(name),
                "dataType": spec.get("type", "object")
                if isinstance(spec.get("type"), str)
                else "any",
                "required": name in required or op.location_of(name) == "path",
                "description": spec.get("description", ""),
            }
        )
    return {
        "operationId": op.name or op.id,
        "method": op.method,
        "path": path,
        "vendorMethod": op.vendor_method,
        "vendorPath": op.vendor_path,
        "description": op.description,
        "parameters": parameters,
        "requiredConfiguration": needs_representation(op),
    }


def element_summary(element: Element, *, with_resources: bool = False) -> dict:
    """The element object of seed 002's instance response; the catalog adds resources."""
    return {
        "id": element.id,
        "name": element.name,
        "key": element.key,
        "description": element.description,
        "image": element.image,
        "active": True,
        "deleted": False,
        "typeOauth": element.auth_type.startswith("oauth"),
        "trialAccount": False,
        "resources": (
            [resource_representation(element, op) for op in element.operations]
            if with_resources
            else []
        ),
        "transformationsEnabled": True,
        "bulkDownloadEnabled": bool(element.bulk_objects),
        "bulkUploadEnabled": False,
        "cloneable": True,
        "extendable": False,
        "beta": False,
        "authentication": {"type": element.auth_type},
        "extended": False,
        "hub": element.hub,
        "protocolType": "http",
        "parameters": [],
        "private": False,
    }


def element_detail(element: Element) -> dict:
    return {
        **element_summary(element, with_resources=True),
        "configuration": [config_field_representation(f) for f in element.configuration],
    }


def element_metadata(element: Element) -> dict:
    objects = {}
    pollable = set(element.polling.pollers) if element.polling is not None else set()
    for obj in element.objects:
        ops = [op for op in element.operations if op.object_name == obj.name]
        objects[obj.name] = {
            "description": obj.description,
            "operations": [
                {
                    "operationId": op.name or op.id,
                    "method": op.method,
                    "path": op.path or f"/{element.key}/{op.name}/{{instanceId}}",
                    "requiredConfiguration": needs_representation(op),
                }
                for op in ops
            ],
            "bulk": {"download": obj.bulk is not None, "upload": False},
            "events": {"polling": obj.name in pollable},  # may be in event.objects
        }
        if obj.bulk is not None:  # incremental sync, as in /objects/{name}/metadata
            objects[obj.name]["primaryKey"] = obj.primary_key or None
            objects[obj.name]["cursorField"] = obj.cursor_field or None
            objects[obj.name]["bulkRequiredConfiguration"] = needs_representation(obj)
    return {
        "id": element.id,
        "name": element.name,
        "key": element.key,
        "description": element.description,
        "events": {
            "supported": element.events_supported,
            "methods": ["polling"] if element.polling is not None else [],
        },
        "bulk": {"download": bool(element.bulk_objects), "upload": False},
        "objects": objects,
    }


# --- the shapes above, for the OpenAPI document ------------------------------------------------

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}

# What an operation needs of the instance's configuration (elements/framework/requirements.py).
REQUIRED_CONFIGURATION_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["fields", "description"],
        "properties": {"fields": {"type": "array", "items": _STR}, "description": _STR},
    },
}

RESOURCE_SCHEMA = component(
    "ElementResource",
    {
        "type": "object",
        "required": ["operationId", "method", "path", "parameters"],
        "properties": {
            "operationId": _STR,
            "method": _STR,
            "path": _STR,
            "vendorMethod": _STR,
            "vendorPath": _STR,
            "description": _STR,
            "parameters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": _STR,
                        "type": {"enum": ["path", "query", "body"]},
                        "dataType": _STR,
                        "required": _BOOL,
                        "description": _STR,
                    },
                },
            },
            "requiredConfiguration": REQUIRED_CONFIGURATION_SCHEMA,
        },
    },
)

_SUMMARY_PROPERTIES = {
    "id": {"type": "integer"},
    "name": _STR,
    "key": _STR,
    "description": _STR,
    "image": _STR,
    "active": _BOOL,
    "deleted": _BOOL,
    "typeOauth": _BOOL,
    "trialAccount": _BOOL,
    "resources": {"type": "array", "items": RESOURCE_SCHEMA},
    "transformationsEnabled": _BOOL,
    "bulkDownloadEnabled": _BOOL,
    "bulkUploadEnabled": _BOOL,
    "cloneable": _BOOL,
    "extendable": _BOOL,
    "beta": _BOOL,
    "authentication": {"type": "object", "properties": {"type": _STR}},
    "extended": _BOOL,
    "hub": _STR,
    "protocolType": _STR,
    "parameters": {"type": "array"},
    "private": _BOOL,
}

ELEMENT_SUMMARY_SCHEMA = component(
    "ElementSummary",
    {"type": "object", "required": ["id", "key", "name"], "properties": _SUMMARY_PROPERTIES},
)

ELEMENT_DETAIL_SCHEMA = component(
    "ElementDetail",
    {
        "type": "object",
        "required": ["id", "key", "name", "configuration"],
        "properties": {
            **_SUMMARY_PROPERTIES,
            "configuration": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "type", "required", "secret"],
                    "properties": {
                        "key": _STR,
                        "name": _STR,
                        "type": {"enum": list(CONFIG_TYPES)},
                        "required": _BOOL,
                        "secret": _BOOL,
                        "defaultValue": {},
                        "description": _STR,
                        "choices": {"type": "array", "items": _STR},
                    },
                },
            },
        },
    },
)

ELEMENT_METADATA_SCHEMA = component(
    "ElementMetadata",
    {
        "type": "object",
        "required": ["id", "key", "objects"],
        "properties": {
            "id": {"type": "integer"},
            "name": _STR,
            "key": _STR,
            "description": _STR,
            "events": {
                "type": "object",
                "properties": {"supported": _BOOL, "methods": {"type": "array", "items": _STR}},
            },
            "bulk": {"type": "object", "properties": {"download": _BOOL, "upload": _BOOL}},
            "objects": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "description": _STR,
                        "operations": {"type": "array", "items": {"type": "object"}},
                        "bulk": {"type": "object"},
                        "primaryKey": {"type": ["string", "null"]},
                        "cursorField": {"type": ["string", "null"]},
                        "events": {"type": "object", "properties": {"polling": _BOOL}},
                        "bulkRequiredConfiguration": REQUIRED_CONFIGURATION_SCHEMA,
                    },
                },
            },
        },
    },
)
