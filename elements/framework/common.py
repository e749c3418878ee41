"""Operations every element has, derived from its definition: ``/ping``, ``/objects`` and
``/objects/{name}/metadata`` (Cloud Elements' discovery resources)."""

from datetime import UTC, datetime

from elements.framework.definition import Call, Operation, Result
from elements.framework.requirements import needs_representation
from platform_core.exceptions import NotFound


def ping(call: Call) -> Result:
    response = call.element.verify(call)
    return Result(
        {
            "dateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endpoint": call.element.key,
            "valid": True,
        },
        vendor_status=getattr(response, "status", None),
    )


def list_objects(call: Call) -> Result:
    return Result([obj.name for obj in call.element.objects])


def object_metadata(call: Call) -> Result:
    name = call.inputs["name"]
    obj = next((o for o in call.element.objects if o.name == name), None)
    if obj is None:
        raise NotFound(f"The {call.element.key} element has no object {name[:100]}.")
    body = {
        "name": obj.name,
        "description": obj.description,
        "fields": [
            {"vendorPath": f.path, "type": f.type, "description": f.description} for f in obj.fields
        ],
        # What each operation on the object needs of the instance's configuration.
        "operations": [
            {
                "operationId": op.name or op.id,
                "method": op.method,
                "path": op.path or f"/{call.element.key}/{op.name}/{{instanceId}}",
                "requiredConfiguration": needs_representation(op),
            }
            for op in call.element.operations
            if op.object_name == obj.name
        ],
    }
    if obj.bulk is not None:
        # Incremental sync (contract §6): what identifies a record, and where the next sync
        # starts (where <cursorField> >= '<the last job's cursor>').
        body["primaryKey"] = obj.primary_key or None
        body["cursorField"] = obj.cursor_field or None
        # What a bulk job of the object needs of the configuration (checked at submission).
        body["bulkRequiredConfiguration"] = needs_representation(obj)
    return Result(body)


_NO_INPUT = {"type": "object", "properties": {}, "additionalProperties": False}


def common_operations() -> tuple[Operation, ...]:
    return (
        Operation(
            id="ping",
            method="GET",
            path="/ping",
            handler=ping,
            description="Check that the instance's credentials still work, with one cheap call.",
            vendor_method="GET",
            vendor_path="(the element's verification call)",
            input_schema=_NO_INPUT,
            output_schema={
                "type": "object",
                "properties": {
                    "dateTime": {"type": "string"},
                    "endpoint": {"type": "string"},
                    "valid": {"type": "boolean"},
                },
                "required": ["dateTime", "endpoint", "valid"],
            },
            idempotent=True,
        ),
        Operation(
            id="getObjects",
            method="GET",
            path="/objects",
            handler=list_objects,
            description="The element's objects.",
            vendor_method="-",
            vendor_path="(none: from the element definition)",
            input_schema=_NO_INPUT,
            output_schema={"type": "array", "items": {"type": "string"}},
            idempotent=True,
        ),
        Operation(
            id="getObjectMetadata",
            method="GET",
            path="/objects/{name}/metadata",
            handler=object_metadata,
            description="The fields of one of the element's objects.",
            vendor_method="-",
            vendor_path="(none: from the element definition)",
            input_schema={
                "type": "object",
                "properties": {"name": {"type": "string", "x-in": "path", "maxLength": 100}},
                "required": ["name"],
                "additionalProperties": False,
            },
            output_schema={
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "fields": {"type": "array"},
                    "operations": {"type": "array"},
                    "primaryKey": {"type": ["string", "null"]},
                    "cursorField": {"type": ["string", "null"]},
                    "bulkRequiredConfiguration": {"type": "array"},
                },
                "required": ["name", "fields"],
            },
            idempotent=True,
        ),
    )
