"""An element's OpenAPI 3.1 document, generated from the same Operations that run."""

from __future__ import annotations

import copy
from typing import Any

from elements.framework.definition import Element, Operation
from elements.framework.registry import all_elements
from elements.framework.requirements import needs_representation
from platform_core.openapi import (
    BODY_ERRORS,
    COMPONENTS,
    ERROR_DESCRIPTIONS,
    ERROR_REF,
    PLATFORM_ERRORS,
    SECURITY_SCHEMES,
    USER_ELEMENT,
    VENDOR_ERRORS,
)

API_PREFIX = "/elements/api-v2"

# What any element call can answer besides its result (elements/api.py, dispatch.py, vendor.py).
CALL_ERRORS = (*PLATFORM_ERRORS, 403, 404, *VENDOR_ERRORS)


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
        for name, spec in op.properties_in(location, operation_style=operation_style):
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


def _request_body(op: Operation, *, operation_style: bool) -> dict | None:
    if op.text_body is not None:
        spec = op.input_schema["properties"][op.text_body.property]
        schema = without_location_hints(spec)
        return {
            "required": True,
            "description": spec.get("description", ""),
            "content": {media_type: {"schema": schema} for media_type in op.text_body.media_types},
        }
    body_props = dict(op.properties_in("body", operation_style=operation_style))
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


def operation_object(op: Operation, *, operation_style: bool, id_prefix: str = "") -> dict:
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
    body = _request_body(op, operation_style=operation_style)
    for status in sorted({*CALL_ERRORS, *(BODY_ERRORS if body else ())}):
        responses[str(status)] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": ERROR_REF}},
        }
    obj = {
        "operationId": id_prefix + (op.name if operation_style else op.id),
        "summary": op.description.split(".")[0],
        "description": f"{op.description}\n\nVendor call: `{op.vendor_method} {op.vendor_path}`.",
        "tags": [op.object_name or "operations"],
        "parameters": _parameters(op, operation_style=operation_style),
        "responses": responses,
        "x-vendor-method": op.vendor_method,
        "x-vendor-path": op.vendor_path,
        "x-required-configuration": needs_representation(op),
    }
    if body:
        obj["requestBody"] = body
    return obj


def element_paths(element: Element, *, resource_prefix: str, merged: bool) -> dict[str, dict]:
    """Path items of every operation: resource style under ``resource_prefix``, operation style
    at the site root. ``merged``: for the platform's document, where operation ids and tags are
    qualified by the element and every operation names its security scheme."""
    paths: dict[str, dict] = {}
    for op in element.operations:
        for operation_style in (False, True):
            if operation_style and not op.name or not operation_style and not op.path:
                continue
            obj = operation_object(
                op,
                operation_style=operation_style,
                id_prefix=f"{element.key}." if merged else "",
            )
            if operation_style:
                path = f"/{element.key}/{op.name}/{{instanceId}}"
                if not merged:
                    obj["servers"] = [{"url": "/"}]
            else:
                path = f"{resource_prefix}/hubs/{element.hub}{op.path}"
            if merged:
                obj["tags"] = [f"{element.name}: {tag}" for tag in obj["tags"]]
                obj["security"] = [{USER_ELEMENT: []}]
            paths.setdefault(path, {})[op.method.lower()] = obj
    return paths


def openapi_document(element: Element) -> dict:
    """One element's own document (``GET /elements/{key}/docs``)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{element.name} element",
            "version": "1",
            "description": element.description,
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{USER_ELEMENT: []}],
        "paths": element_paths(element, resource_prefix="", merged=False),
        "components": {
            "schemas": {"Error": COMPONENTS["Error"]},
            "securitySchemes": {USER_ELEMENT: SECURITY_SCHEMES[USER_ELEMENT]},
        },
    }


def merge_element_documents(result, generator, request, public):
    """drf-spectacular postprocessing hook: every element's operations join the platform's
    document, under the paths a client calls (resource style under /elements/api-v2,
    operation style at the site root)."""
    paths = result.setdefault("paths", {})
    for element in all_elements():
        for path, item in element_paths(element, resource_prefix=API_PREFIX, merged=True).items():
            paths.setdefault(path, {}).update(item)
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {})[USER_ELEMENT] = SECURITY_SCHEMES[USER_ELEMENT]
    return result
