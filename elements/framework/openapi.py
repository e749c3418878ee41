"""An element's OpenAPI 3.1 document, generated from the same Operations that run."""

from __future__ import annotations

import copy
from typing import Any

from elements.framework.definition import Element, Operation

ERROR_SCHEMA = {
    "type": "object",
    "required": ["requestId", "message"],
    "properties": {
        "requestId": {"type": "string"},
        "message": {"type": "string"},
        "providerMessage": {"type": "string"},
        "providerStatus": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ERROR_STATUSES = {
    "400": "Bad input",
    "401": "Not authenticated",
    "403": "Instance disabled",
    "404": "Not found",
    "429": "Rate limited (see Retry-After)",
    "502": "The vendor failed or answered garbage",
    "504": "The vendor timed out",
}


def without_location_hints(schema: Any) -> Any:
    """The schema without our ``x-in`` location hints."""
    if isinstance(schema, dict):
        return {k: without_location_hints(v) for k, v in schema.items() if k != "x-in"}
    if isinstance(schema, list):
        return [without_location_hints(v) for v in schema]
    return schema


def _parameters(op: Operation, *, operation_style: bool) -> list[dict]:
    required = set(op.input_schema.get("required", ()))
    params = []
    if operation_style:
        params.append(
            {
                "name": "instanceId",
                "in": "path",
                "required": True,
                "schema": {"type": "integer"},
                "description": "The instance to call with.",
            }
        )
    for location in ("path", "query"):
        for name, spec in op.properties_in(location):
            params.append(
                {
                    "name": name,
                    "in": location,
                    "required": location == "path" or name in required,
                    "schema": without_location_hints(spec),
                    "description": spec.get("description", ""),
                }
            )
    return params


def _request_body(op: Operation) -> dict | None:
    body_props = dict(op.properties_in("body"))
    if not body_props:
        return None
    required = [p for p in op.input_schema.get("required", ()) if p in body_props]
    schema = {
        "type": "object",
        "properties": without_location_hints(body_props),
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": schema}}}


def operation_object(op: Operation, *, operation_style: bool) -> dict:
    responses = {
        "200": {
            "description": "Success",
            "content": {
                "application/json": {
                    "schema": without_location_hints(copy.deepcopy(op.output_schema))
                }
            },
        }
    }
    for status, text in ERROR_STATUSES.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    obj = {
        "operationId": op.name if operation_style else op.id,
        "summary": op.description.split(".")[0],
        "description": f"{op.description}\n\nVendor call: `{op.vendor_method} {op.vendor_path}`.",
        "tags": [op.object_name or "operations"],
        "parameters": _parameters(op, operation_style=operation_style),
        "responses": responses,
        "x-vendor-method": op.vendor_method,
        "x-vendor-path": op.vendor_path,
    }
    body = _request_body(op)
    if body:
        obj["requestBody"] = body
    return obj


def openapi_document(element: Element) -> dict:
    paths: dict[str, dict] = {}
    for op in element.operations:
        if op.path:
            entry = paths.setdefault(f"/hubs/{element.hub}{op.path}", {})
            entry[op.method.lower()] = operation_object(op, operation_style=False)
        if op.name:
            entry = paths.setdefault(f"/{element.key}/{op.name}/{{instanceId}}", {})
            obj = operation_object(op, operation_style=True)
            obj["servers"] = [{"url": "/"}]
            entry[op.method.lower()] = obj
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{element.name} element",
            "version": "1",
            "description": element.description,
        },
        "servers": [{"url": "/elements/api-v2"}],
        "security": [{"UserElement": []}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "UserElement": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "User <user secret>, Element <instance token>",
                }
            },
        },
    }
