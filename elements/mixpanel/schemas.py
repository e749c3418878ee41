"""JSON Schema pieces shared by the Mixpanel operations."""

SERVICE_ACCOUNT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "username": {"type": "string"},
        "last_used": {"type": ["string", "null"]},
        "expires": {"type": ["string", "null"]},
        "creator": {"type": ["integer", "null"]},
        "created": {"type": ["string", "null"]},
    },
    "required": ["id", "username"],
}

ORGANIZATION_ID = {
    "type": "integer",
    "minimum": 1,
    "description": "Mixpanel organization id; defaults to the instance's organization_id.",
}

SERVICE_ACCOUNT_WRITE = {
    "username": {"type": "string", "minLength": 1, "maxLength": 255, "description": "Username."},
    "role": {
        "type": "string",
        "enum": ["owner", "admin", "analyst", "consumer"],
        "description": "Role of the service account.",
    },
    "expires": {
        "type": ["string", "null"],
        "format": "date-time",
        "maxLength": 64,
        "description": "Expiry (ISO-8601); none by default.",
    },
    "projects": {
        "type": "array",
        "maxItems": 1000,
        "description": "Projects to add the account to, each {id, role}.",
        "items": {
            "type": "object",
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "role": {"type": "string", "enum": ["owner", "admin", "analyst", "consumer"]},
            },
            "required": ["id", "role"],
            "additionalProperties": False,
        },
    },
}

PROFILE = {
    "type": "object",
    "properties": {
        "id": {"type": ["string", "integer"], "description": "The $distinct_id."},
        "$distinct_id": {"type": ["string", "integer"]},
        "$properties": {"type": "object"},
    },
    "required": ["id", "$distinct_id"],
}

PROFILE_OPERATIONS = {
    "$set": {"type": "object", "maxProperties": 255},
    "$set_once": {"type": "object", "maxProperties": 255},
    "$add": {"type": "object", "maxProperties": 255},
    "$union": {"type": "object", "maxProperties": 255},
    "$append": {"type": "object", "maxProperties": 255},
    "$remove": {"type": "object", "maxProperties": 255},
    "$unset": {"type": "array", "items": {"type": "string"}, "maxItems": 255},
}

EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "minLength": 1, "maxLength": 255},
        "properties": {"type": "object"},
    },
    "required": ["event"],
}

IMPORT_OUTPUT = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["OK", "PARTIAL", "FAILED"]},
        "num_records_imported": {"type": "integer"},
        "failed_records": {"type": "array"},
    },
    "required": ["status", "num_records_imported", "failed_records"],
}

TRACK_OUTPUT = {
    "type": "object",
    "properties": {
        "status": {"type": "integer", "enum": [0, 1]},
        "error": {"type": ["string", "null"]},
    },
    "required": ["status", "error"],
}
