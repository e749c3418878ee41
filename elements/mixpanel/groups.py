"""Group profiles (Mixpanel's Group Analytics, reference part 2 §3).

Updates go to ``/groups`` on the ingestion host, authenticated by the project token inside
each update; Mixpanel takes one operation per update object, so a body with ``$set`` and
``$unset`` is sent as two updates in one request. Queries are engage queries with the group
key's ``data_group_id``, which the instance's ``data_groups`` configuration maps from the
group key's name; they page like ``GET /users`` and ``$group_id`` is engage's ``$distinct_id``.
"""

from elements.framework.definition import Call, Operation, Result
from elements.framework.record_ids import joined_id
from elements.framework.vendor import VendorError
from elements.mixpanel.needs import DATA_GROUP, PROJECT_FOR_SERVICE_ACCOUNT, PROJECT_TOKEN
from elements.mixpanel.profiles import (
    ENGAGE_PATH,
    MAX_PAGE_SIZE,
    engage,
    page_cursor,
    read_page_cursor,
    repeated_id,
    selector_of,
)
from platform_core.exceptions import NotFound, ValidationFailed
from platform_core.pagination import NEXT_PAGE_HEADER

GROUPS_PATH = "/groups"

GROUP_OPERATIONS = {
    "$set": {"type": "object", "maxProperties": 255, "description": "Set properties."},
    "$set_once": {
        "type": "object",
        "maxProperties": 255,
        "description": "Set properties the profile does not have yet.",
    },
    "$unset": {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 255},
        "minItems": 1,
        "maxItems": 255,
        "description": "Remove these properties.",
    },
    "$union": {
        "type": "object",
        "maxProperties": 255,
        "additionalProperties": {
            "type": "array",
            "minItems": 1,
            "maxItems": 255,
            "items": {"type": ["string", "number"]},
        },
        "description": "Add values to list properties, without duplicates.",
    },
    "$remove": {
        "type": "object",
        "maxProperties": 255,
        "description": "Remove a value from list properties.",
    },
}


def _send(call: Call, group_key: str, group_id: str, operations: dict) -> int:
    token = call.configuration["project_token"]  # declared: present by now
    updates = [
        {"$token": token, "$group_key": group_key, "$group_id": group_id, op: value}
        for op, value in operations.items()
    ]
    response = call.vendor.request(
        "POST",
        "api",
        GROUPS_PATH,
        query={"verbose": 1},
        json_body=updates,
        authenticate=False,  # the project token in each update authenticates it
    )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != 1:
        message = body.get("error") if isinstance(body, dict) else None
        raise VendorError(
            "Mixpanel refused the group profile update.",
            status_code=400,
            provider_status=response.status,
            provider_message=str(message or response.text()[:500]),
        )
    return response.status


def _operations_of(inputs: dict) -> dict:
    operations = {k: inputs[k] for k in GROUP_OPERATIONS if k in inputs}
    if not operations:
        raise ValidationFailed(
            "Give at least one group profile operation.",
            errors=[{"field": "$set", "message": f"one of {', '.join(GROUP_OPERATIONS)}"}],
        )
    return operations


def _same_group_key(inputs: dict) -> None:
    repeated_id(inputs, body_key="$group_key", url_key="groupKey")


def create_group(call: Call) -> Result:
    _same_group_key(call.inputs)
    key, group_id = call.inputs["groupKey"], str(call.inputs["$group_id"])
    if "$delete" in call.inputs:  # Mixpanel's batch form of DELETE /groups/{key}/{id}
        if any(op in call.inputs for op in GROUP_OPERATIONS):
            raise ValidationFailed(
                "$delete goes alone.",
                errors=[{"field": "$delete", "message": "no other operation with $delete"}],
            )
        status = _send(call, key, group_id, {"$delete": ""})
        return Result(group_record(key, group_id, {"deleted": True}), vendor_status=status)
    operations = _operations_of(call.inputs)
    status = _send(call, key, group_id, operations)
    return Result(group_record(key, group_id, operations), vendor_status=status)


def update_group(call: Call) -> Result:
    _same_group_key(call.inputs)
    repeated_id(call.inputs, body_key="$group_id", url_key="groupId")
    key, group_id = call.inputs["groupKey"], call.inputs["groupId"]
    operations = _operations_of(call.inputs)
    status = _send(call, key, group_id, operations)
    return Result(group_record(key, group_id, operations), vendor_status=status)


def delete_group(call: Call) -> Result:
    key, group_id = call.inputs["groupKey"], call.inputs["groupId"]
    status = _send(call, key, group_id, {"$delete": ""})
    return Result(group_record(key, group_id, {"deleted": True}), vendor_status=status)


def _data_group_id(call: Call) -> str:
    # Declared (DATA_GROUP): the key is in data_groups by now. Sent as text, as Mixpanel does.
    return str(call.configuration["data_groups"][call.inputs["groupKey"]])


def group_record(key: str, group_id: str, rest: dict) -> dict:
    """A group record with its top-level ``id``, the primary key ``$group_key,$group_id``
    joined: ``company_id:acme`` (contract §9)."""
    return {"id": joined_id(key, group_id), "$group_key": key, "$group_id": group_id, **rest}


def group_profile(key: str, record: dict) -> dict:
    return group_record(key, str(record.get("$distinct_id")), record)


def search_groups(call: Call) -> Result:
    key = call.inputs["groupKey"]
    page_size = call.inputs.get("pageSize", 200)
    session_id, page = (None, 0)
    if call.inputs.get("nextPage"):
        session_id, page = read_page_cursor(call.inputs["nextPage"])
    body, status = engage(
        call,
        {
            "data_group_id": _data_group_id(call),
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
    return Result(
        [group_profile(key, r) for r in body["results"]], headers=headers, vendor_status=status
    )


def get_group(call: Call) -> Result:
    key, group_id = call.inputs["groupKey"], call.inputs["groupId"]
    body, status = engage(call, {"data_group_id": _data_group_id(call), "distinct_id": group_id})
    if not body["results"]:
        raise NotFound(f"No {key[:100]} group profile {group_id[:100]}.")
    return Result(group_profile(key, body["results"][0]), vendor_status=status)


_GROUP_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "x-in": "path",
    "description": "The group key's name, e.g. company_id.",
}
_GROUP_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "x-in": "path",
    "description": "The group's id (the group key's value).",
}
_BODY_GROUP_KEY = {
    "type": "string",
    "maxLength": 255,
    "description": "May repeat the URL's group key; a different one is 400.",
}
_BODY_GROUP_ID = {
    "type": ["string", "integer"],
    "minLength": 1,
    "maxLength": 255,
    "description": "The group's id.",
}
_GROUP_RECORD_ID = {"type": "string", "description": "$group_key:$group_id, e.g. company_id:acme."}
GROUP_PROFILE = {
    "type": "object",
    "properties": {
        "id": _GROUP_RECORD_ID,
        "$group_key": {"type": "string"},
        "$group_id": {"type": "string"},
        "$properties": {"type": "object"},
    },
    "required": ["id", "$group_key", "$group_id"],
}
_UPDATED = {
    "type": "object",
    "properties": {
        "id": _GROUP_RECORD_ID,
        "$group_key": {"type": "string"},
        "$group_id": {"type": "string"},
    },
    "required": ["id", "$group_key", "$group_id"],
}
_ONE_GROUP = {
    "type": "object",
    "properties": {"groupKey": _GROUP_KEY, "groupId": _GROUP_ID},
    "required": ["groupKey", "groupId"],
    "additionalProperties": False,
}
_QUERY = (DATA_GROUP, PROJECT_FOR_SERVICE_ACCOUNT)

OPERATIONS = (
    Operation(
        id="createGroup",
        name="create_group",
        method="POST",
        path="/groups/{groupKey}",
        object_name="groups",
        handler=create_group,
        requires_configuration=(PROJECT_TOKEN,),
        description=(
            'Update a group profile ({"$group_id": "Acme", "$set": {...}}; also $set_once, '
            "$unset, $union, $remove, or $delete alone); creates it with $set, $set_once or "
            "$union."
        ),
        vendor_method="POST",
        vendor_path=GROUPS_PATH,
        input_schema={
            "type": "object",
            "properties": {
                "groupKey": _GROUP_KEY,
                "$group_key": _BODY_GROUP_KEY,
                "$group_id": _BODY_GROUP_ID,
                **GROUP_OPERATIONS,
                "$delete": {
                    "type": ["null", "string"],
                    "maxLength": 0,
                    "description": 'null or "": delete the group profile (alone).',
                },
            },
            "required": ["groupKey", "$group_id"],
            "additionalProperties": False,
        },
        output_schema=_UPDATED,
        idempotent=True,  # every group operation gives the same result when repeated
    ),
    Operation(
        id="getGroups",
        name="query_groups",
        method="GET",
        path="/groups/{groupKey}",
        object_name="groups",
        handler=search_groups,
        requires_configuration=_QUERY,
        description=(
            "Query the group profiles of a group key (data_groups maps it to Mixpanel's "
            "data_group_id); where: CEQL as for users; pageSize, nextPage."
        ),
        vendor_method="POST",
        vendor_path=f"{ENGAGE_PATH} (data_group_id)",
        input_schema={
            "type": "object",
            "properties": {
                "groupKey": _GROUP_KEY,
                "where": {"type": "string", "maxLength": 10000, "description": "CEQL filter."},
                "pageSize": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                "nextPage": {"type": "string", "maxLength": 2000},
            },
            "required": ["groupKey"],
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": GROUP_PROFILE},
        idempotent=True,
    ),
    Operation(
        id="getGroup",
        name="get_group",
        method="GET",
        path="/groups/{groupKey}/{groupId}",
        object_name="groups",
        handler=get_group,
        requires_configuration=_QUERY,
        description="Read one group profile.",
        vendor_method="POST",
        vendor_path=f"{ENGAGE_PATH} (data_group_id)",
        input_schema=_ONE_GROUP,
        output_schema=GROUP_PROFILE,
        idempotent=True,
    ),
    Operation(
        id="updateGroup",
        name="update_group",
        method="PATCH",
        path="/groups/{groupKey}/{groupId}",
        object_name="groups",
        handler=update_group,
        requires_configuration=(PROJECT_TOKEN,),
        description=(
            "Update one group profile ($set, $set_once, $unset, $union, $remove); the body may "
            "repeat its $group_key and $group_id."
        ),
        vendor_method="POST",
        vendor_path=GROUPS_PATH,
        input_schema={
            "type": "object",
            "properties": {
                "groupKey": _GROUP_KEY,
                "groupId": _GROUP_ID,
                "$group_key": _BODY_GROUP_KEY,
                "$group_id": {**_BODY_GROUP_ID, "description": "May repeat the URL's group id."},
                **GROUP_OPERATIONS,
            },
            "required": ["groupKey", "groupId"],
            "additionalProperties": False,
        },
        output_schema=_UPDATED,
        idempotent=True,
    ),
    Operation(
        id="deleteGroup",
        name="delete_group",
        method="DELETE",
        path="/groups/{groupKey}/{groupId}",
        object_name="groups",
        handler=delete_group,
        requires_configuration=(PROJECT_TOKEN,),
        description="Delete one group profile.",
        vendor_method="POST",
        vendor_path=f"{GROUPS_PATH} ($delete)",
        input_schema=_ONE_GROUP,
        output_schema=_UPDATED,
        idempotent=True,
    ),
)
