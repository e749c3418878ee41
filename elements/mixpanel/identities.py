"""Identity management (reference part 2 §4): merging two distinct ids (``$merge``) and
aliasing one (``$create_alias``), sent as events through ``/import``.

Whether Mixpanel takes them depends on the project's ID-management version (Simplified ID
Merge takes neither, the pre-2020 Legacy system no ``$merge``); a refusal comes back as a 400
with Mixpanel's words in ``providerMessage``. Each event's ``$insert_id`` is derived from its
ids, so a retried or repeated request is deduplicated by Mixpanel.
"""

import hashlib
import time

from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorError, raise_for_status
from elements.mixpanel.needs import QUERY
from elements.mixpanel.vendor import project_query
from platform_core.exceptions import ValidationFailed

IMPORT_PATH = "/import"


def _insert_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def send_identity_event(call: Call, event: str, properties: dict) -> int:
    """One identity event through ``/import`` (strict, so a refusal is reported); the vendor's
    status. A token, when configured, goes in the event as Mixpanel's examples show it."""
    token = call.configuration.get("project_token")
    properties = {
        "time": int(time.time()),
        **properties,
        **({"token": token} if token else {}),
    }
    response = call.vendor.request(
        "POST",
        "api",
        IMPORT_PATH,
        query={"strict": 1, **project_query(call.configuration)},
        json_body=[{"event": event, "properties": properties}],
        check=False,
    )
    body = response.json() if response.data[:1] == b"{" else None
    failed = body.get("failed_records") if isinstance(body, dict) else None
    if response.status == 400 and isinstance(failed, list) and failed:
        first = failed[0] if isinstance(failed[0], dict) else {}
        raise VendorError(
            f"Mixpanel refused the {event} event.",
            status_code=400,
            provider_status=response.status,
            provider_message=str(first.get("message") or body.get("error"))[:1000],
        )
    raise_for_status(response)
    return response.status


def merge_identities(call: Call) -> Result:
    first, second = (str(i) for i in call.inputs["distinct_ids"])
    if first == second:
        raise ValidationFailed(
            "distinct_ids must name two different ids.",
            errors=[{"field": "distinct_ids", "message": "must be two different ids"}],
        )
    insert_id = _insert_id("$merge", first, second)
    status = send_identity_event(
        call,
        "$merge",
        {"distinct_id": first, "$distinct_ids": [first, second], "$insert_id": insert_id},
    )
    # The record is the identity event: its ``id`` is the event's $insert_id (contract §9).
    return Result(
        {"id": insert_id, "merged": True, "distinct_ids": [first, second]}, vendor_status=status
    )


def create_alias(call: Call) -> Result:
    distinct_id, alias = str(call.inputs["distinct_id"]), str(call.inputs["alias"])
    if distinct_id == alias:
        raise ValidationFailed(
            "alias must differ from distinct_id.",
            errors=[{"field": "alias", "message": "must differ from distinct_id"}],
        )
    insert_id = _insert_id("$create_alias", distinct_id, alias)
    status = send_identity_event(
        call,
        "$create_alias",
        {"distinct_id": distinct_id, "alias": alias, "$insert_id": insert_id},
    )
    return Result(
        {"id": insert_id, "aliased": True, "distinct_id": distinct_id, "alias": alias},
        vendor_status=status,
    )


_EVENT_ID = {"type": "string", "description": "The identity event's $insert_id."}
_ID = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"\S"}

OPERATIONS = (
    Operation(
        id="mergeIdentities",
        name="merge_identities",
        method="POST",
        path="/identities/merge",
        object_name="identities",
        handler=merge_identities,
        description=(
            'Merge two distinct ids into one user ({"distinct_ids": [a, b]}; irreversible). '
            "Only projects on Original ID Merge allow it."
        ),
        vendor_method="POST",
        vendor_path=IMPORT_PATH + " ($merge)",
        input_schema={
            "type": "object",
            "properties": {
                "distinct_ids": {
                    "type": "array",
                    "items": _ID,
                    "minItems": 2,
                    "maxItems": 2,
                    "description": "Exactly two distinct ids.",
                }
            },
            "required": ["distinct_ids"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": _EVENT_ID,
                "merged": {"type": "boolean"},
                "distinct_ids": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["id", "merged", "distinct_ids"],
        },
        idempotent=True,  # the $insert_id makes a repeat a no-op
        requires_configuration=QUERY,  # /import: a service account names its project
    ),
    Operation(
        id="createAlias",
        name="create_alias",
        method="POST",
        path="/identities/alias",
        object_name="identities",
        handler=create_alias,
        description=(
            'Give a distinct id an alias ({"distinct_id": ..., "alias": ...}). Projects on '
            "Simplified ID Merge refuse it."
        ),
        vendor_method="POST",
        vendor_path=IMPORT_PATH + " ($create_alias)",
        input_schema={
            "type": "object",
            "properties": {
                "distinct_id": {**_ID, "description": "The existing distinct id."},
                "alias": {**_ID, "description": "The new id that will map to it."},
            },
            "required": ["distinct_id", "alias"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": _EVENT_ID,
                "aliased": {"type": "boolean"},
                "distinct_id": {"type": "string"},
                "alias": {"type": "string"},
            },
            "required": ["id", "aliased", "distinct_id", "alias"],
        },
        idempotent=True,
        requires_configuration=QUERY,  # /import: a service account names its project
    ),
)
