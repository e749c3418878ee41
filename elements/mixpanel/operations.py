"""The Mixpanel element's operations: one handler each, with its input and output schema.

Resource-style operations (``path``) follow Cloud Elements' shapes; operation-style ones
(``name``) follow seed 000/001. Where both styles reach the same vendor call they share a helper.
"""

from datetime import UTC, datetime

from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorError
from elements.mixpanel.vendor import (
    auth_header,
    organization_id,
    project_query,
    uses_service_account,
)
from platform_core.exceptions import BadRequest

# --- shared schema pieces -------------------------------------------------------------------

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

NO_INPUT = {"type": "object", "properties": {}, "additionalProperties": False}


# --- service accounts ----------------------------------------------------------------------


def _require_service_account(call: Call) -> int:
    if not uses_service_account(call.configuration):
        raise BadRequest(
            "Service-account calls need an instance configured with service-account "
            "credentials (username and password)."
        )
    org = organization_id(call)
    if not org:
        raise BadRequest(
            "No organization_id: pass one or configure the instance with organization_id."
        )
    return int(org)


def _fetch_service_accounts(call: Call) -> tuple[list, int]:
    org = _require_service_account(call)
    response = call.vendor.request(
        "GET",
        "app",
        f"/api/app/organizations/{org}/service-accounts",
        auth=auth_header(call.configuration),
        idempotent=True,
    )
    body = response.json()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise VendorError(
            "Mixpanel's service-account list had no results array.",
            provider_status=response.status,
        )
    return results, response.status


def list_service_accounts(call: Call) -> Result:
    accounts, status = _fetch_service_accounts(call)
    return Result(accounts, vendor_status=status)


def get_service_accounts(call: Call) -> Result:
    accounts, status = _fetch_service_accounts(call)
    return Result({"total": len(accounts), "service_accounts": accounts}, vendor_status=status)


# --- ping ----------------------------------------------------------------------------------


def verify(call: Call):
    """The one cheap vendor call that proves the credentials work (instance create, ping)."""
    config = call.configuration
    auth = auth_header(config)
    if uses_service_account(config):
        if config.get("organization_id"):
            path = f"/api/app/organizations/{config['organization_id']}/service-accounts"
        else:
            path = "/api/app/me"
        return call.vendor.request("GET", "app", path, auth=auth, idempotent=True)
    # An API secret alone cannot use the app API: ask the query API for one top event.
    return call.vendor.request(
        "GET",
        "app",
        "/api/query/events/top",
        query={"type": "general", "limit": 1, **project_query(config)},
        auth=auth,
        idempotent=True,
    )


def ping(call: Call) -> Result:
    response = verify(call)
    return Result(
        {
            "dateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endpoint": call.element.key,
            "valid": True,
        },
        vendor_status=response.status,
    )


OPERATIONS = (
    Operation(
        id="getServiceAccounts",
        method="GET",
        path="/service-accounts",
        object_name="service-accounts",
        handler=list_service_accounts,
        description="List the organization's service accounts.",
        vendor_method="GET",
        vendor_path="/api/app/organizations/{organizationId}/service-accounts",
        input_schema={
            "type": "object",
            "properties": {"organization_id": ORGANIZATION_ID},
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": SERVICE_ACCOUNT},
        idempotent=True,
    ),
    Operation(
        id="get_service_accounts",
        name="get_service_accounts",
        method="GET",
        object_name="service-accounts",
        handler=get_service_accounts,
        description="Retrieve all service accounts of the Mixpanel organization.",
        vendor_method="GET",
        vendor_path="/api/app/organizations/{organizationId}/service-accounts",
        input_schema={
            "type": "object",
            "properties": {"organization_id": ORGANIZATION_ID},
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "service_accounts": {"type": "array", "items": SERVICE_ACCOUNT},
            },
            "required": ["total", "service_accounts"],
        },
        idempotent=True,
    ),
    Operation(
        id="ping",
        method="GET",
        path="/ping",
        handler=ping,
        description="Check that the instance's credentials still work, with one cheap call.",
        vendor_method="GET",
        vendor_path="/api/app/me | /api/query/events/top",
        input_schema=NO_INPUT,
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
)
