"""From an HTTP request to an operation's result: route, assemble inputs, validate, call.

Both URL styles (resource style ``/hubs/{hub}/users/{id}`` and operation style
``/mixpanel/query_profiles/{instanceId}``) end in ``run_operation`` with the same Operation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import orjson

from elements.framework.authentication import Authentication
from elements.framework.definition import Call, Element, Operation, Result, TextBody
from elements.framework.registry import all_elements
from elements.framework.requirements import check_configuration
from elements.framework.vendor import Deadline, Vendor, VendorClient, VendorGarbage
from platform_core.exceptions import BadRequest, NotFound, PlatformError, ValidationFailed
from platform_core.nesting import NESTED_TOO_DEEPLY, may_nest_too_deeply, nested_too_deeply
from platform_core.validation import schema_errors


class MethodNotAllowed(PlatformError):
    status_code = 405
    default_detail = "Method not allowed."


def _path_pattern(path: str, *, named: bool) -> str:
    """A resource path (``/users/{id}``) as a regular expression; ``{id}`` is one segment."""
    segment = r"(?P<\1>[^/]+)" if named else r"[^/]+"
    return re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", segment, re.escape(path)) + r"/?"


@cache
def _routes(element: Element) -> tuple[tuple[re.Pattern, Operation], ...]:
    routes = []
    for op in element.resource_operations:
        routes.append((re.compile(_path_pattern(op.path, named=True) + r"\Z"), op))
    # Literal paths win over parameterised ones (/activities/top before /activities/{id}).
    routes.sort(key=lambda r: r[1].path.count("{"))
    return tuple(routes)


@cache
def _any_resource() -> re.Pattern:
    """One pattern for the resource paths of every element, whatever the method."""
    paths = {op.path for element in all_elements() for op in element.resource_operations}
    alternatives = "|".join(_path_pattern(path, named=False) for path in sorted(paths))
    return re.compile(rf"(?:{alternatives})\Z")


def _normalised(path: str) -> str:
    return "/" + path.strip("/")


def names_a_resource(path: str) -> bool:
    """Whether ``path`` (relative to the hub) is a resource of some element: only then can an
    element call have been meant, and is it worth asking for an element token."""
    return _any_resource().match(_normalised(path)) is not None


def match_resource(element: Element, method: str, path: str) -> tuple[Operation, dict]:
    """The operation for ``method path`` (path relative to the hub), or 404/405."""
    path = _normalised(path)
    allowed = []
    for pattern, op in _routes(element):
        match = pattern.match(path)
        if match:
            if op.method == method:
                return op, match.groupdict()
            allowed.append(op.method)
    if allowed:
        raise MethodNotAllowed(
            f"{method} is not supported on {path}; use {', '.join(sorted(set(allowed)))}.",
            headers={"Allow": ", ".join(sorted(set(allowed)))},
        )
    raise NotFound(f"The {element.key} element has no resource {path[:200]}.")


def _coerce_query_value(values: list[str], spec: Mapping) -> Any:
    """A query or path string as the type the schema wants, when it reads as one."""
    kind = spec.get("type")
    if kind == "array":
        return values
    value = values[-1]
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            return value  # left for the schema to reject with a clear message
    if kind == "boolean":
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    return value


def assemble_inputs(
    op: Operation, *, query: Mapping[str, list[str]], body: Any, path_params: Mapping[str, str]
) -> dict:
    """One input dict from path, query string and JSON body, as the schema says where each
    property comes from. Unknown query parameters and body keys are 400. No path parameters
    means operation style, where the path's properties come from the query or the body."""
    operation_style = not path_params
    path_props = dict(op.properties_in("path"))
    inputs: dict[str, Any] = {
        name: _coerce_query_value([value], path_props.get(name, {}))
        for name, value in path_params.items()
    }
    errors = []
    query_props = dict(op.properties_in("query", operation_style=operation_style))
    for name, values in query.items():
        key = name[:-2] if name.endswith("[]") else name
        if key not in query_props:
            errors.append({"field": name[:100], "message": "unknown query parameter"})
            continue
        inputs[key] = _coerce_query_value(values, query_props[key])
    if body is not None:
        if isinstance(body, list) and op.array_body:
            body = {op.array_body: body}
        if not isinstance(body, dict):
            raise ValidationFailed(
                "The request body must be a JSON object.",
                errors=[{"field": "body", "message": "must be an object"}],
            )
        body_props = {name for name, _ in op.properties_in("body", operation_style=operation_style)}
        for key, value in body.items():
            if key not in body_props:
                errors.append({"field": str(key)[:100], "message": "unknown field"})
            elif key in inputs:
                errors.append({"field": key, "message": "given both in the query and the body"})
            else:
                inputs[key] = value
    if errors:
        raise ValidationFailed(errors=errors)
    # No text scan: the body was parsed by orjson (no lone surrogates) and Django decodes the
    # path and query string as UTF-8.
    errors = schema_errors(op.input_validator, inputs, check_text=False)
    if errors:
        raise ValidationFailed(errors=errors)
    return inputs


def vendor_client(
    element: Element,
    configuration: dict,
    *,
    deadline: Deadline | None = None,
    idempotent: bool = False,
    authentication: Authentication | None = None,
) -> VendorClient:
    """The element's hosts for this configuration, with its authentication strategy's headers.
    ``<KEY>_BASE_URL`` in the environment (e.g. ``MIXPANEL_BASE_URL``) replaces every host, and
    ``<KEY>_<ALIAS>_BASE_URL`` (e.g. ``MIXPANEL_API_BASE_URL``) the one of that alias; an
    instance's configuration never can. ``deadline``: the element call's, which every request
    of the client ends by. ``idempotent``: whether its requests may be retried once sent.
    ``authentication``: an operation's own strategy, in place of the element's."""
    prefix = element.key.upper()
    override = os.environ.get(f"{prefix}_BASE_URL")
    hosts = {}
    for alias, url in element.hosts(configuration).items():
        url = os.environ.get(f"{prefix}_{alias.upper()}_BASE_URL") or override or url
        hosts[alias] = url.rstrip("/")
    return VendorClient(
        hosts,
        deadline=deadline,
        auth_headers=(authentication or element.authentication).headers(configuration),
        idempotent=idempotent,
    )


def make_call(
    element: Element,
    *,
    instance_id: int,
    configuration: dict,
    operation: Operation | None = None,
    inputs: dict | None = None,
    request_id: str = "",
    vendor: Vendor | None = None,
) -> Call:
    """The one way to build a ``Call``: an element call (``operation`` and its inputs), the
    credential check (the ``ping`` operation) and a bulk job (no operation; it passes its own
    ``vendor``, guarded and without a call deadline).

    With an operation, the vendor client has an element call's ``Deadline`` and the
    operation's idempotency, so handlers pass neither credentials nor retry safety."""
    if vendor is None:
        vendor = vendor_client(
            element,
            configuration,
            deadline=Deadline(),
            idempotent=operation.idempotent if operation is not None else False,
            authentication=operation.authentication if operation is not None else None,
        )
    return Call(
        element=element,
        instance_id=instance_id,
        configuration=configuration,
        inputs=inputs if inputs is not None else {},
        vendor=vendor,
        request_id=request_id,
        operation=operation,
    )


def run_operation(
    element: Element,
    op: Operation,
    *,
    instance_id: int,
    configuration: dict,
    inputs: dict,
    request_id: str = "",
) -> Result:
    check_configuration(
        element, op, instance_id=instance_id, configuration=configuration, inputs=inputs
    )
    call = make_call(
        element,
        instance_id=instance_id,
        configuration=configuration,
        operation=op,
        inputs=inputs,
        request_id=request_id,
    )
    outcome = op.handler(call)
    result = outcome if isinstance(outcome, Result) else Result(body=outcome)
    errors = schema_errors(op.output_validator, result.body)
    if errors:
        # The vendor's answer did not have the shape the operation promises.
        raise VendorGarbage(
            "The vendor's answer did not match the operation's output schema.",
            errors=errors[:5],
            provider_status=result.vendor_status,
        )
    return result


def request_inputs(
    op: Operation,
    *,
    raw: bytes,
    content_type: str,
    query: Mapping[str, list[str]],
    path_params: Mapping[str, str],
    may_stay_raw: bool = True,
) -> dict:
    """The operation's inputs from a request. A body-only call to an operation with a
    ``raw_inputs`` fast path takes it (no Python object per value, no schema walk over a large
    body); anything it declines goes the general way, which gives the same answer or explains
    the error. ``may_stay_raw=False`` when the inputs must be plain JSON values (traced calls
    log them)."""
    if op.raw_inputs is not None and may_stay_raw and not query and not path_params:
        media_type = (content_type or "").split(";")[0].strip().lower()
        if media_type in ("application/json", "text/json"):
            inputs = op.raw_inputs(raw)
            if inputs is not None:
                return inputs
    if op.text_body is not None:
        body = parse_text_body(raw, content_type=content_type, text_body=op.text_body)
    else:
        body = parse_body(raw, content_type=content_type)
    return assemble_inputs(op, query=query, body=body, path_params=path_params)


def parse_text_body(raw: bytes, *, content_type: str, text_body: TextBody) -> dict | None:
    """A text body (a CSV upload) as ``{property: text}``, or None when there is none. Only
    the operation's media types are accepted (415 otherwise); the text is decoded with the
    charset the request names, UTF-8 by default. The body limit was applied before."""
    if not raw:
        return None
    media_type, _, params = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type not in text_body.media_types:
        accepted = ", ".join(text_body.media_types)
        raise PlatformError(f"Unsupported Content-Type: send {accepted}.", status_code=415)
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    field = text_body.property
    try:
        text = raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise ValidationFailed(
            f"The request body is not {charset[:40]} text.",
            errors=[{"field": field, "message": f"must be text in {charset[:40]}"}],
        ) from None
    if "\x00" in text:
        raise ValidationFailed(errors=[{"field": field, "message": "must not contain NUL"}])
    return {field: text}


def parse_body(raw: bytes, *, content_type: str) -> Any:
    """A JSON body, or None when there is none (an empty body or ``null``).

    orjson: faster than the standard library on large imports, and strict where the platform
    needs it to be: a lone surrogate (not storable, not sendable as UTF-8) or NaN is a 400 here,
    so element inputs need no separate text scan."""
    if not raw or not raw.strip():
        return None
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "text/json"):
        raise PlatformError("Unsupported Content-Type: send application/json.", status_code=415)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    if may_nest_too_deeply(raw) and nested_too_deeply(body):
        raise BadRequest(NESTED_TOO_DEEPLY)
    return body
