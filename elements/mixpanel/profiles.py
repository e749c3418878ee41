"""User profiles: Mixpanel's engage query (reference §4) and profile updates (§8).

``GET /users`` takes CEQL (translated into a Mixpanel selector by ``selector_language.py``, or a raw
selector as ``query='...'``) and pages with ``pageSize``/``nextPage``; the cursor carries
Mixpanel's ``session_id`` and next 0-based ``page``.
"""

import json

from elements.framework.ceql import CeqlError
from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorError, VendorGarbage
from elements.mixpanel.needs import PROJECT_TOKEN, QUERY
from elements.mixpanel.schemas import PROFILE, PROFILE_OPERATIONS
from elements.mixpanel.selector_language import where_to_selector
from elements.mixpanel.vendor import project_query
from platform_core.exceptions import BadRequest, NotFound, ValidationFailed
from platform_core.pagination import NEXT_PAGE_HEADER, decode_token, encode_token

MAX_PAGE_SIZE = 1000
ENGAGE_PATH = "/api/query/engage"
# Updates that give the same result when repeated, so a retry cannot double-apply them.
IDEMPOTENT_UPDATES = {"$set", "$set_once", "$unset", "$delete"}


def engage(call: Call, params: dict) -> tuple[dict, int]:
    """One engage page. A read: every operation (and bulk job) that asks for one is
    idempotent, so it is retried."""
    form = {k: v for k, v in params.items() if v is not None}
    response = call.vendor.request(
        "POST",
        "app",
        ENGAGE_PATH,
        query=project_query(call.configuration),
        form=form,
    )
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise VendorGarbage(
            "Mixpanel's engage answer had no results.", provider_status=response.status
        )
    return body, response.status


def with_id(profile: dict) -> dict:
    """A profile with its top-level ``id`` (contract §9: every record carries its primary key,
    for a profile the distinct id)."""
    if not isinstance(profile, dict) or "id" in profile:
        return profile
    return {"id": profile.get("$distinct_id"), **profile}


def _has_more(body: dict, page: int, page_size: int) -> bool:
    total = body.get("total")
    if isinstance(total, int):
        return total > (page + 1) * page_size
    return len(body["results"]) >= page_size


def _encode_cursor(session_id: str, page: int) -> str:
    return encode_token({"s": session_id, "p": page})


def page_cursor(body: dict, page: int, page_size: int) -> str | None:
    """The ``nextPage`` token after this engage page, or None on the last one."""
    if _has_more(body, page, page_size) and body.get("session_id"):
        return _encode_cursor(str(body["session_id"]), page + 1)
    return None


def _valid_cursor(data: dict) -> bool:
    return isinstance(data["s"], str) and isinstance(data["p"], int) and data["p"] >= 1


def read_page_cursor(token: str) -> tuple[str, int]:
    data = decode_token(token, _valid_cursor)
    return data["s"], data["p"]


def selector_of(where: str | None) -> str | None:
    if not where:
        return None
    try:
        return where_to_selector(where)
    except CeqlError as exc:
        raise ValidationFailed(
            f"where: {exc}", errors=[{"field": "where", "message": str(exc)}]
        ) from None


def search_users(call: Call) -> Result:
    page_size = call.inputs.get("pageSize", 200)
    session_id, page = (None, 0)
    if call.inputs.get("nextPage"):
        session_id, page = read_page_cursor(call.inputs["nextPage"])
    body, status = engage(
        call,
        {
            "where": selector_of(call.inputs.get("where")),
            "page": page,
            "session_id": session_id,
            "page_size": page_size,
        },
    )
    headers = {}
    cursor = page_cursor(body, page, page_size)
    if cursor:
        headers[NEXT_PAGE_HEADER] = cursor
    return Result([with_id(p) for p in body["results"]], headers=headers, vendor_status=status)


def query_profiles(call: Call) -> Result:
    page = call.inputs.get("page", 0)
    if page > 0 and not call.inputs.get("session_id"):
        raise BadRequest("page > 0 needs the session_id of the first page.")
    output_properties = call.inputs.get("output_properties")
    body, status = engage(
        call,
        {
            "where": call.inputs.get("where"),
            "output_properties": json.dumps(output_properties) if output_properties else None,
            "page": page,
            "session_id": call.inputs.get("session_id"),
        },
    )
    page_size = body.get("page_size") if isinstance(body.get("page_size"), int) else MAX_PAGE_SIZE
    total = body.get("total")
    return Result(
        {
            "results": [with_id(p) for p in body["results"]],
            "page": body.get("page", page),
            "session_id": str(body.get("session_id") or ""),
            "total": total if isinstance(total, int) else len(body["results"]),
            "has_more": _has_more(body, page, page_size),
        },
        vendor_status=status,
    )


def get_user(call: Call) -> Result:
    body, status = engage(call, {"distinct_id": call.inputs["id"]})
    if not body["results"]:
        raise NotFound(f"No profile with $distinct_id {call.inputs['id'][:100]}.")
    return Result(with_id(body["results"][0]), vendor_status=status)


def _update(call: Call, distinct_id: str, operations: dict) -> int:
    # Declared by the operations (requires_configuration): present by now.
    token = call.configuration["project_token"]
    update = {"$token": token, "$distinct_id": distinct_id, **operations}
    response = call.vendor.request(
        "POST",
        "api",
        "/engage",
        query={"verbose": 1},
        json_body=[update],
        authenticate=False,  # the project token in the update authenticates it
        # Whatever the operation: this update's own operations decide.
        idempotent=set(operations) <= IDEMPOTENT_UPDATES,
    )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != 1:
        message = body.get("error") if isinstance(body, dict) else None
        raise VendorError(
            "Mixpanel refused the profile update.",
            status_code=400,
            provider_status=response.status,
            provider_message=str(message or response.text()[:500]),
        )
    return response.status


def _operations_of(inputs: dict) -> dict:
    operations = {k: inputs[k] for k in PROFILE_OPERATIONS if k in inputs}
    if not operations:
        raise ValidationFailed(
            "Give at least one profile operation.",
            errors=[{"field": "$set", "message": f"one of {', '.join(PROFILE_OPERATIONS)}"}],
        )
    return operations


def create_user(call: Call) -> Result:
    distinct_id = str(call.inputs["$distinct_id"])
    operations = _operations_of(call.inputs)
    status = _update(call, distinct_id, operations)
    return Result(with_id({"$distinct_id": distinct_id, **operations}), vendor_status=status)


def repeated_id(inputs: dict, *, body_key: str, url_key: str) -> None:
    """An update may repeat the record's own id in its body (Cloud Elements clients send the
    create body again); a different one is 400."""
    if body_key in inputs and str(inputs[body_key]) != inputs[url_key]:
        raise ValidationFailed(
            f"The body's {body_key} differs from the one in the URL ({inputs[url_key][:100]}).",
            errors=[{"field": body_key, "message": "must be the URL's id, or left out"}],
        )


def update_user(call: Call) -> Result:
    repeated_id(call.inputs, body_key="$distinct_id", url_key="id")
    operations = _operations_of(call.inputs)
    status = _update(call, call.inputs["id"], operations)
    return Result(with_id({"$distinct_id": call.inputs["id"], **operations}), vendor_status=status)


def delete_user(call: Call) -> Result:
    status = _update(call, call.inputs["id"], {"$delete": ""})
    return Result(
        with_id({"$distinct_id": call.inputs["id"], "deleted": True}), vendor_status=status
    )


_ID = {"type": "string", "minLength": 1, "maxLength": 255, "x-in": "path"}
_DISTINCT_ID = {"type": ["string", "integer"], "description": "The profile's $distinct_id."}
_ONE_PROFILE = {
    "type": "object",
    "properties": {"id": _ID},
    "required": ["id"],
    "additionalProperties": False,
}
_UPDATED = {
    "type": "object",
    "properties": {"$distinct_id": {"type": "string"}},
    "required": ["$distinct_id"],
}

OPERATIONS = (
    Operation(
        id="getUsers",
        method="GET",
        path="/users",
        object_name="users",
        handler=search_users,
        requires_configuration=QUERY,
        description=(
            "Query user profiles. where: CEQL such as \"$city\"='Dallas', or a raw Mixpanel "
            'selector as query=\'(properties["$city"] == "Dallas")\'.'
        ),
        vendor_method="POST",
        vendor_path=ENGAGE_PATH,
        input_schema={
            "type": "object",
            "properties": {
                "where": {"type": "string", "maxLength": 10000, "description": "CEQL filter."},
                "pageSize": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                "nextPage": {"type": "string", "maxLength": 2000},
            },
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": PROFILE},
        idempotent=True,
    ),
    Operation(
        id="createUser",
        method="POST",
        path="/users",
        object_name="users",
        handler=create_user,
        requires_configuration=(PROJECT_TOKEN,),
        description='Set profile properties ({"$distinct_id": ..., "$set": {...}}).',
        vendor_method="POST",
        vendor_path="/engage",
        input_schema={
            "type": "object",
            "properties": {"$distinct_id": _DISTINCT_ID, **PROFILE_OPERATIONS},
            "required": ["$distinct_id"],
            "additionalProperties": False,
        },
        output_schema=_UPDATED,
    ),
    Operation(
        id="getUser",
        method="GET",
        path="/users/{id}",
        object_name="users",
        handler=get_user,
        requires_configuration=QUERY,
        description="Read one profile by $distinct_id.",
        vendor_method="POST",
        vendor_path=ENGAGE_PATH,
        input_schema=_ONE_PROFILE,
        output_schema=PROFILE,
        idempotent=True,
    ),
    Operation(
        id="updateUser",
        method="PATCH",
        path="/users/{id}",
        object_name="users",
        handler=update_user,
        requires_configuration=(PROJECT_TOKEN,),
        description=(
            "Update one profile ($set, $unset, $add, ...); the body may repeat the profile's "
            "$distinct_id."
        ),
        vendor_method="POST",
        vendor_path="/engage",
        input_schema={
            "type": "object",
            "properties": {"id": _ID, "$distinct_id": _DISTINCT_ID, **PROFILE_OPERATIONS},
            "required": ["id"],
            "additionalProperties": False,
        },
        output_schema=_UPDATED,
    ),
    Operation(
        id="deleteUser",
        method="DELETE",
        path="/users/{id}",
        object_name="users",
        handler=delete_user,
        requires_configuration=(PROJECT_TOKEN,),
        description="Delete one profile.",
        vendor_method="POST",
        vendor_path="/engage ($delete)",
        input_schema=_ONE_PROFILE,
        output_schema=_UPDATED,
        idempotent=True,
    ),
    Operation(
        id="query_profiles",
        name="query_profiles",
        method="POST",
        object_name="users",
        handler=query_profiles,
        requires_configuration=QUERY,
        description="Query user profiles with a Mixpanel selector, page by page.",
        vendor_method="POST",
        vendor_path=ENGAGE_PATH,
        input_schema={
            "type": "object",
            "properties": {
                "where": {
                    "type": "string",
                    "maxLength": 10000,
                    "description": 'Mixpanel selector, e.g. properties["$city"] == "Dallas".',
                },
                "output_properties": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 255},
                    "maxItems": 255,
                },
                "page": {"type": "integer", "minimum": 0},
                "session_id": {"type": "string", "maxLength": 255},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "results": {"type": "array", "items": PROFILE},
                "page": {"type": "integer"},
                "session_id": {"type": "string"},
                "total": {"type": "integer"},
                "has_more": {"type": "boolean"},
            },
            "required": ["results", "page", "session_id", "total", "has_more"],
        },
        idempotent=True,
    ),
)
