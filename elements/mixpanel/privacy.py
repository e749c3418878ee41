"""Privacy requests: Mixpanel's GDPR/CCPA API v3 (reference part 2 §6).

Mixpanel wants the project token in the query (``?token=``) and, in place of the instance's
Basic credentials, ``Authorization: Bearer <GDPR OAuth token>``: these operations carry their
own authentication strategy, reading the secret ``gdpr_token`` configuration. The answers are
Mixpanel's v3 ones (``task_id`` on create, the task's ``results`` on read); the older prose
form (``results`` as a one-item list with ``tracking_id``) is read too.
"""

from elements.framework.authentication import ApiKeyHeader
from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorGarbage, raise_for_status
from elements.mixpanel.needs import PRIVACY
from platform_core.exceptions import Conflict, ValidationFailed

VENDOR_PATHS = {
    "deletions": "/api/app/data-deletions/v3.0",
    "retrievals": "/api/app/data-retrievals/v3.0",
}
MAX_IDS = {"deletions": 1999, "retrievals": 2000}

GDPR_BEARER = ApiKeyHeader(key="gdpr_token", header="Authorization", prefix="Bearer ")


def _token_query(call: Call) -> dict:
    return {"token": call.configuration["project_token"]}  # declared: present by now


def _results(response) -> dict:
    body = response.json()
    results = body.get("results") if isinstance(body, dict) else None
    if isinstance(results, list) and len(results) == 1:  # the prose examples' form
        results = results[0]
    if not isinstance(results, dict):
        raise VendorGarbage(
            "Mixpanel's privacy answer had no results.", provider_status=response.status
        )
    return results


def _create(call: Call, kind: str) -> Result:
    body = {
        "distinct_ids": [str(i) for i in call.inputs["distinct_ids"]],
        "compliance_type": call.inputs.get("compliance_type", "GDPR"),
    }
    if "disclosure_type" in call.inputs:
        if body["compliance_type"] != "CCPA":
            raise ValidationFailed(
                "disclosure_type goes with CCPA requests only.",
                errors=[{"field": "disclosure_type", "message": "only with compliance_type CCPA"}],
            )
        body["disclosure_type"] = call.inputs["disclosure_type"]
    response = call.vendor.request(
        "POST", "app", VENDOR_PATHS[kind] + "/", query=_token_query(call), json_body=body
    )
    results = _results(response)
    task_id = results.get("task_id", results.get("tracking_id"))
    if task_id in (None, ""):
        raise VendorGarbage("Mixpanel's answer had no task id.", provider_status=response.status)
    # Every record carries its primary key as ``id`` (contract §9): the task id.
    return Result(
        {"id": str(task_id), "task_id": str(task_id), **body}, vendor_status=response.status
    )


def _without_id(results: dict) -> dict:
    # The record's ``id`` is its task id, whatever Mixpanel's answer says.
    return {k: v for k, v in results.items() if k != "id"}


def create_deletion(call: Call) -> Result:
    return _create(call, "deletions")


def create_retrieval(call: Call) -> Result:
    return _create(call, "retrievals")


def get_request(call: Call) -> Result:
    kind, task_id = call.inputs["kind"], call.inputs["taskId"]
    response = call.vendor.request(
        "GET", "app", f"{VENDOR_PATHS[kind]}/{task_id}", query=_token_query(call)
    )
    results = _results(response)
    return Result(
        {"id": task_id, "task_id": task_id, "kind": kind, **_without_id(results)},
        vendor_status=response.status,
    )


def cancel_deletion(call: Call) -> Result:
    task_id = call.inputs["taskId"]
    response = call.vendor.request(
        "DELETE",
        "app",
        f"{VENDOR_PATHS['deletions']}/{task_id}",
        query=_token_query(call),
        check=False,
    )
    if response.status == 405:  # Mixpanel: the deletion has started, too late to cancel
        raise Conflict(
            f"Deletion {task_id[:40]} can no longer be cancelled.",
            provider_status=405,
            provider_message=response.text()[:500],
        )
    raise_for_status(response)
    return Result(
        {"id": task_id, "task_id": task_id, "cancelled": True}, vendor_status=response.status
    )


_DISTINCT_IDS = {
    "type": "array",
    "minItems": 1,
    "items": {"type": ["string", "integer"], "minLength": 1, "maxLength": 255},
    "description": "Whose data.",
}
_COMPLIANCE = {
    "type": "string",
    "enum": ["GDPR", "CCPA"],
    "description": "GDPR (default) or CCPA.",
}
_TASK_ID = {
    "type": "string",
    "pattern": "^[0-9A-Za-z_-]{1,64}$",
    "x-in": "path",
    "description": "The task_id the create answered.",
}
_RECORD_ID = {"type": "string", "description": "The task_id (the record's primary key)."}
_CREATED = {
    "type": "object",
    "properties": {
        "id": _RECORD_ID,
        "task_id": {"type": "string"},
        "distinct_ids": {"type": "array"},
        "compliance_type": {"type": "string"},
    },
    "required": ["id", "task_id", "distinct_ids", "compliance_type"],
}


def _create_input(kind: str, **extra) -> dict:
    return {
        "type": "object",
        "properties": {
            "distinct_ids": {**_DISTINCT_IDS, "maxItems": MAX_IDS[kind]},
            "compliance_type": _COMPLIANCE,
            **extra,
        },
        "required": ["distinct_ids"],
        "additionalProperties": False,
    }


OPERATIONS = (
    Operation(
        id="createPrivacyDeletion",
        name="create_privacy_deletion",
        method="POST",
        path="/privacy/deletions",
        object_name="privacy-requests",
        handler=create_deletion,
        requires_configuration=PRIVACY,
        authentication=GDPR_BEARER,
        description=(
            'Ask Mixpanel to delete the data of some users ({"distinct_ids": [...], '
            '"compliance_type": "GDPR"}); answers the task_id.'
        ),
        vendor_method="POST",
        vendor_path=VENDOR_PATHS["deletions"] + "/",
        input_schema=_create_input("deletions"),
        output_schema=_CREATED,
    ),
    Operation(
        id="createPrivacyRetrieval",
        name="create_privacy_retrieval",
        method="POST",
        path="/privacy/retrievals",
        object_name="privacy-requests",
        handler=create_retrieval,
        requires_configuration=PRIVACY,
        authentication=GDPR_BEARER,
        description=(
            "Ask Mixpanel for an export of the data of some users (distinct_ids, "
            "compliance_type, and for CCPA disclosure_type); answers the task_id."
        ),
        vendor_method="POST",
        vendor_path=VENDOR_PATHS["retrievals"] + "/",
        input_schema=_create_input(
            "retrievals",
            disclosure_type={
                "type": "string",
                "enum": ["Data", "Categories", "Sources"],
                "description": "CCPA only: what to disclose (Data by default).",
            },
        ),
        output_schema=_CREATED,
    ),
    Operation(
        id="getPrivacyRequest",
        name="get_privacy_request",
        method="GET",
        path="/privacy/{kind}/{taskId}",
        object_name="privacy-requests",
        handler=get_request,
        requires_configuration=PRIVACY,
        authentication=GDPR_BEARER,
        description="A privacy request's status (PENDING, STAGING, STARTED, SUCCESS, FAILURE...).",
        vendor_method="GET",
        vendor_path="/api/app/data-{deletions|retrievals}/v3.0/{taskId}",
        input_schema={
            "type": "object",
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": ["deletions", "retrievals"],
                    "x-in": "path",
                    "description": "deletions or retrievals.",
                },
                "taskId": _TASK_ID,
            },
            "required": ["kind", "taskId"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": _RECORD_ID,
                "task_id": {"type": "string"},
                "kind": {"type": "string"},
                "status": {"type": "string"},
            },
            "required": ["id", "task_id", "kind", "status"],
        },
        idempotent=True,
    ),
    Operation(
        id="cancelPrivacyDeletion",
        name="cancel_privacy_deletion",
        method="DELETE",
        # The same path as the read: only deletions can be cancelled (kind is "deletions").
        path="/privacy/{kind}/{taskId}",
        object_name="privacy-requests",
        handler=cancel_deletion,
        requires_configuration=PRIVACY,
        authentication=GDPR_BEARER,
        description=(
            "Cancel a deletion that has not started (409 once it has); retrievals cannot be "
            "cancelled."
        ),
        vendor_method="DELETE",
        vendor_path=VENDOR_PATHS["deletions"] + "/{taskId}",
        input_schema={
            "type": "object",
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": ["deletions"],
                    "x-in": "path",
                    "description": "deletions (only deletions can be cancelled).",
                },
                "taskId": _TASK_ID,
            },
            "required": ["kind", "taskId"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": _RECORD_ID,
                "task_id": {"type": "string"},
                "cancelled": {"type": "boolean"},
            },
            "required": ["id", "task_id", "cancelled"],
        },
        idempotent=True,
    ),
)
