"""The JSON Schemas of definition and transformation bodies (requests and answers)."""

FIELD_TYPES = ("string", "number", "boolean", "date", "array")
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_PATH = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    # Dot paths, [*] for every element of an array: a.b, items[*].name
    "pattern": r"^[^.\[\]]+(?:\[\*\])?(?:\.[^.\[\]]+(?:\[\*\])?)*$",
    "x-error": "must be a dot path such as address.city or items[*].name",
}
_TYPE = {"type": "string", "enum": list(FIELD_TYPES)}
_FLAGS = {
    "type": "object",
    "properties": {"fromVendor": {"type": "boolean"}, "toVendor": {"type": "boolean"}},
    "additionalProperties": False,
}

DEFINITION_FIELD = {
    "type": "object",
    "properties": {"path": _PATH, "type": _TYPE, "description": {"type": "string"}},
    "required": ["path", "type"],
    "additionalProperties": False,
}

DEFINITION_WRITE = {
    "type": "object",
    "properties": {
        "fields": {"type": "array", "items": DEFINITION_FIELD, "minItems": 1, "maxItems": 500},
        "level": {"type": "string"},  # echoed by Cloud Elements' answers; ignored
    },
    "required": ["fields"],
    "additionalProperties": False,
}

DEFINITION = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "level": {"type": "string", "enum": ["organization", "instance"]},
        "fields": {"type": "array", "items": DEFINITION_FIELD},
    },
    "required": ["name", "level", "fields"],
}

DEFINITION_MAP = {"type": "object", "additionalProperties": DEFINITION}

_FIELD_CONFIGURATION = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"type": {"const": "remove"}, "properties": _FLAGS},
            "required": ["type"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "type": {"const": "transformDate"},
                "properties": {
                    "type": "object",
                    "properties": {
                        "pattern": {"type": "string", "minLength": 1, "maxLength": 100},
                        "vendorPattern": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                    "required": ["pattern"],
                    "additionalProperties": False,
                },
            },
            "required": ["type", "properties"],
            "additionalProperties": False,
        },
    ],
    "x-error": "must be {type: remove, properties: {fromVendor, toVendor}} or "
    "{type: transformDate, properties: {pattern}}",
}

_OBJECT_CONFIGURATION = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"type": {"const": "passThrough"}, "properties": _FLAGS},
            "required": ["type"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {"type": {"const": "inherit"}, "properties": {"type": "object"}},
            "required": ["type"],
            "additionalProperties": False,
        },
    ],
    "x-error": "must be {type: passThrough, properties: {fromVendor, toVendor}} or {type: inherit}",
}

TRANSFORMATION_FIELD = {
    "type": "object",
    "properties": {
        "path": _PATH,
        "vendorPath": _PATH,
        "type": _TYPE,
        "vendorType": {"type": "string", "maxLength": 50},
        "configuration": {"type": "array", "items": _FIELD_CONFIGURATION, "maxItems": 10},
    },
    "required": ["path", "vendorPath"],
    "additionalProperties": False,
}

TRANSFORMATION_WRITE = {
    "type": "object",
    "properties": {
        "vendorName": _NAME,
        "fields": {"type": "array", "items": TRANSFORMATION_FIELD, "maxItems": 500},
        "configuration": {"type": "array", "items": _OBJECT_CONFIGURATION, "maxItems": 10},
        # Checked by the service: anything but an empty script is refused.
        "script": {"type": ["object", "string", "null"]},
        "isLegacy": {"type": "boolean"},
        "level": {"type": "string"},  # echoed by Cloud Elements' answers; ignored
    },
    "required": ["vendorName", "fields"],
    "additionalProperties": False,
}

TRANSFORMATION = {
    "type": "object",
    "properties": {
        "objectName": {"type": "string"},
        "vendorName": {"type": "string"},
        "level": {"type": "string", "enum": ["organization", "instance"]},
        "element": {"type": "object", "properties": {"key": {"type": "string"}}},
        "instanceId": {"type": "integer"},
        "fields": {"type": "array", "items": TRANSFORMATION_FIELD},
        "configuration": {"type": "array"},
        "isLegacy": {"type": "boolean"},
        "startDate": {"type": "string"},
    },
    "required": ["objectName", "vendorName", "level", "fields", "configuration"],
}

TRANSFORMATION_MAP = {"type": "object", "additionalProperties": TRANSFORMATION}
