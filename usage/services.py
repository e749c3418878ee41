"""Building the usage record of one element call."""

import json
from datetime import UTC, datetime

from elements.framework.configuration import MASK, redact
from platform_core.nesting import MAX_JSON_DEPTH, nested_too_deeply
from usage import writer

MAX_TRACED_BODY = 64 * 1024  # bytes of JSON kept per traced body


def _traceable(value, *, element, configuration, secret_keys=()):
    if value is None:
        return None
    if secret_keys and isinstance(value, dict):
        value = {k: (MASK if k in secret_keys else v) for k, v in value.items()}
    if nested_too_deeply(value):  # json and the spool's orjson would give up on it
        return {"truncated": True, "reason": f"nested deeper than {MAX_JSON_DEPTH} levels"}
    value = redact(element, value, configuration)
    encoded = json.dumps(value, default=str)
    if len(encoded) > MAX_TRACED_BODY:
        return {"truncated": True, "bytes": len(encoded)}
    if "\\u0000" in encoded:  # PostgreSQL's jsonb cannot hold NUL
        return json.loads(encoded.replace("\\u0000", "\\ufffd"))
    return value


def usage_record_call(
    *,
    request_id: str,
    user_id: int,
    instance,
    element,
    operation,
    method: str,
    operation_name: str = "",
    path: str,
    status: int,
    vendor_status: int | None,
    duration_ms: float,
    configuration: dict | None = None,
    request_body=None,
    response_body=None,
) -> None:
    record = {
        "request_id": request_id,
        "user_id": user_id,
        "instance_id": instance.pk,
        "element_key": instance.element_key,
        "operation": (operation.name or operation.id) if operation else operation_name,
        "method": method,
        "path": path[:500],
        "status": status,
        "vendor_status": vendor_status,
        "duration_ms": round(duration_ms, 3),
        "created_at": datetime.now(UTC).isoformat(),
        "request_body": None,
        "response_body": None,
    }
    if instance.trace_logging_enabled and configuration is not None:
        secret_keys = operation.secret_output_keys if operation else ()
        record["request_body"] = _traceable(
            request_body, element=element, configuration=configuration
        )
        record["response_body"] = _traceable(
            response_body, element=element, configuration=configuration, secret_keys=secret_keys
        )
    writer.write(record)
