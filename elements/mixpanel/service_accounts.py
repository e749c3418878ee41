"""Service accounts (Mixpanel's organization API, reference §3).

The create response carries the account's one-time secret: it is handed to the caller and
nowhere else (never stored, never logged; the usage log keeps no bodies of this operation).
"""

from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.needs import SERVICE_ACCOUNT_CALL
from elements.mixpanel.schemas import ORGANIZATION_ID, SERVICE_ACCOUNT, SERVICE_ACCOUNT_WRITE
from elements.mixpanel.vendor import organization_id, results_of, uses_service_account
from platform_core.exceptions import BadRequest

VENDOR_PATH = "/api/app/organizations/{organizationId}/service-accounts"


def _organization(call: Call) -> int:
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


def _list(call: Call) -> tuple[list, int]:
    org = _organization(call)
    response = call.vendor.request(
        "GET",
        "app",
        f"/api/app/organizations/{org}/service-accounts",
    )
    return results_of(response, list, "service-account"), response.status


def _create(call: Call) -> tuple[dict, int]:
    org = _organization(call)
    body = {k: call.inputs[k] for k in SERVICE_ACCOUNT_WRITE if k in call.inputs}
    # Not idempotent: a retried create could make two accounts.
    response = call.vendor.request(
        "POST",
        "app",
        f"/api/app/organizations/{org}/service-accounts",
        json_body=body,
    )
    created = results_of(response, dict, "service-account")
    if "id" not in created or "token" not in created:
        raise VendorGarbage(
            "Mixpanel's create answer had no id or secret.", provider_status=response.status
        )
    return created, response.status


def list_accounts(call: Call) -> Result:
    accounts, status = _list(call)
    return Result(accounts, vendor_status=status)


def get_service_accounts(call: Call) -> Result:
    accounts, status = _list(call)
    return Result({"total": len(accounts), "service_accounts": accounts}, vendor_status=status)


def create_account(call: Call) -> Result:
    created, status = _create(call)
    account = {k: v for k, v in created.items() if k != "token"}
    return Result({**account, "secret": created["token"]}, vendor_status=status)


def create(call: Call) -> Result:
    created, status = _create(call)
    return Result(
        {
            "service_account_created": True,
            "id": created["id"],
            "username": created.get("username"),
            "secret": created["token"],
        },
        vendor_status=status,
    )


def get_account(call: Call) -> Result:
    org = _organization(call)
    response = call.vendor.request(
        "GET",
        "app",
        f"/api/app/organizations/{org}/service-accounts/{call.inputs['id']}",
    )
    body = response.json()
    # The OpenAPI document shows it bare; clients unwrap "results" when present.
    account = body.get("results", body) if isinstance(body, dict) else None
    if not isinstance(account, dict):
        raise VendorGarbage("Mixpanel's answer had no account.", provider_status=response.status)
    return Result(account, vendor_status=response.status)


def delete_account(call: Call) -> Result:
    org = _organization(call)
    response = call.vendor.request(
        "DELETE",
        "app",
        f"/api/app/organizations/{org}/service-accounts/{call.inputs['id']}",
    )
    return Result({"id": call.inputs["id"], "deleted": True}, vendor_status=response.status)


_ORG_INPUT = {
    "type": "object",
    "properties": {"organization_id": ORGANIZATION_ID},
    "additionalProperties": False,
}
_ID = {"type": "integer", "minimum": 1, "x-in": "path", "description": "Service account id."}
_ORG_QUERY = {**ORGANIZATION_ID, "x-in": "query"}
_ONE_ACCOUNT = {
    "type": "object",
    "properties": {"id": _ID, "organization_id": _ORG_QUERY},
    "required": ["id"],
    "additionalProperties": False,
}
_CREATE_INPUT = {
    "type": "object",
    "properties": {"organization_id": _ORG_QUERY, **SERVICE_ACCOUNT_WRITE},
    "required": ["username"],
    "additionalProperties": False,
}
_CREATED = {
    **SERVICE_ACCOUNT,
    "properties": {**SERVICE_ACCOUNT["properties"], "secret": {"type": "string"}},
    "required": ["id", "username", "secret"],
}

OPERATIONS = (
    Operation(
        id="getServiceAccounts",
        method="GET",
        path="/service-accounts",
        object_name="service-accounts",
        handler=list_accounts,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="List the organization's service accounts.",
        vendor_method="GET",
        vendor_path=VENDOR_PATH,
        input_schema=_ORG_INPUT,
        output_schema={"type": "array", "items": SERVICE_ACCOUNT},
        idempotent=True,
    ),
    Operation(
        id="createServiceAccount",
        method="POST",
        path="/service-accounts",
        object_name="service-accounts",
        handler=create_account,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="Create a service account. The response holds its one-time secret.",
        vendor_method="POST",
        vendor_path=VENDOR_PATH,
        input_schema=_CREATE_INPUT,
        output_schema=_CREATED,
        secret_output_keys=("secret",),
    ),
    Operation(
        id="getServiceAccount",
        method="GET",
        path="/service-accounts/{id}",
        object_name="service-accounts",
        handler=get_account,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="Read one service account.",
        vendor_method="GET",
        vendor_path=VENDOR_PATH + "/{serviceAccountId}",
        input_schema=_ONE_ACCOUNT,
        output_schema=SERVICE_ACCOUNT,
        idempotent=True,
    ),
    Operation(
        id="deleteServiceAccount",
        method="DELETE",
        path="/service-accounts/{id}",
        object_name="service-accounts",
        handler=delete_account,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="Delete a service account (removes it from every project).",
        vendor_method="DELETE",
        vendor_path=VENDOR_PATH + "/{serviceAccountId}",
        input_schema=_ONE_ACCOUNT,
        output_schema={
            "type": "object",
            "properties": {"id": {"type": "integer"}, "deleted": {"type": "boolean"}},
            "required": ["id", "deleted"],
        },
        idempotent=True,
    ),
    Operation(
        id="get_service_accounts",
        name="get_service_accounts",
        method="GET",
        object_name="service-accounts",
        handler=get_service_accounts,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="Retrieve all service accounts of the Mixpanel organization.",
        vendor_method="GET",
        vendor_path=VENDOR_PATH,
        input_schema=_ORG_INPUT,
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
        id="create",
        name="create",
        method="POST",
        object_name="service-accounts",
        handler=create,
        requires_configuration=SERVICE_ACCOUNT_CALL,
        description="Create a service account; the output holds its one-time secret.",
        vendor_method="POST",
        vendor_path=VENDOR_PATH,
        input_schema={
            "type": "object",
            "properties": {"organization_id": {**ORGANIZATION_ID}, **SERVICE_ACCOUNT_WRITE},
            "required": ["username"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "service_account_created": {"type": "boolean"},
                "id": {"type": "integer"},
                "username": {"type": ["string", "null"]},
                "secret": {"type": "string"},
            },
            "required": ["service_account_created", "id", "username", "secret"],
        },
        secret_output_keys=("secret",),
    ),
)
