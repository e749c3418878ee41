"""Cohorts (Mixpanel's query API, reference part 2 §1.8): the list, and a cohort's members.

``list_cohorts`` and ``cohort_members_page`` are the vendor calls, kept apart from the
operations so that bulk objects and event pollers can build on them.
"""

import json

from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.collections import PAGE_INPUTS, page_of, page_start
from elements.mixpanel.needs import QUERY
from elements.mixpanel.profiles import MAX_PAGE_SIZE, engage, with_id
from elements.mixpanel.schemas import PROFILE
from elements.mixpanel.vendor import project_query
from platform_core.conf import platform_settings
from platform_core.pagination import NEXT_PAGE_HEADER, decode_token, encode_token

COHORTS_PATH = "/api/query/cohorts/list"
ENGAGE_PATH = "/api/query/engage"

COHORT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "count": {"type": "integer"},
        "is_visible": {"type": "integer"},
        "created": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS"},
        "project_id": {"type": "integer"},
    },
    "required": ["id", "name"],
}


def list_cohorts(call: Call) -> tuple[list[dict], int]:
    """Every cohort of the project, as Mixpanel lists them, and the vendor's status."""
    response = call.vendor.request(
        "POST", "app", COHORTS_PATH, query=project_query(call.configuration), idempotent=True
    )
    cohorts = response.json()
    if not isinstance(cohorts, list) or not all(isinstance(c, dict) for c in cohorts):
        raise VendorGarbage(
            "Mixpanel's cohort list was not a list.", provider_status=response.status
        )
    return cohorts, response.status


def cohort_members_page(
    call: Call,
    cohort_id: int,
    *,
    page_size: int,
    session_id: str | None = None,
    page: int = 0,
    where: str | None = None,
) -> tuple[list[dict], str | None, bool, int]:
    """One page of a cohort's members (engage ``filter_by_cohort``, and an engage selector
    ``where``): the profiles, the engage session to continue with, whether more pages follow,
    and the vendor's status."""
    body, status = engage(
        call,
        {
            "filter_by_cohort": json.dumps({"id": cohort_id}),
            "where": where,
            "page": page,
            "session_id": session_id,
            "page_size": page_size,
        },
    )
    total = body.get("total")
    if isinstance(total, int):
        more = total > (page + 1) * page_size
    else:
        more = len(body["results"]) >= page_size
    session = str(body["session_id"]) if body.get("session_id") else None
    return body["results"], session, more and session is not None, status


def get_cohorts(call: Call) -> Result:
    start = page_start(call.inputs)
    cohorts, status = list_cohorts(call)
    page, headers = page_of(cohorts, call.inputs, start)
    return Result(page, headers=headers, vendor_status=status)


def _valid_cursor(data: dict) -> bool:
    return isinstance(data["s"], str) and isinstance(data["p"], int) and data["p"] >= 1


def get_cohort_members(call: Call) -> Result:
    page_size = call.inputs.get("pageSize") or platform_settings.DEFAULT_PAGE_SIZE
    session_id, page = None, 0
    if call.inputs.get("nextPage"):
        cursor = decode_token(call.inputs["nextPage"], _valid_cursor)
        session_id, page = cursor["s"], cursor["p"]
    members, session_id, more, status = cohort_members_page(
        call, call.inputs["cohortId"], page_size=page_size, session_id=session_id, page=page
    )
    headers = {}
    if more:
        headers[NEXT_PAGE_HEADER] = encode_token({"s": session_id, "p": page + 1})
    # Members are user profiles: each carries its distinct id as ``id``, as GET /users does.
    return Result([with_id(m) for m in members], headers=headers, vendor_status=status)


_COHORT_ID = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**63 - 1,
    "x-in": "path",
    "description": "The cohort's id (GET /cohorts).",
}

OPERATIONS = (
    Operation(
        id="getCohorts",
        name="list_cohorts",
        method="GET",
        path="/cohorts",
        object_name="cohorts",
        handler=get_cohorts,
        description="List the project's cohorts, paged with pageSize and nextPage.",
        vendor_method="POST",
        vendor_path=COHORTS_PATH,
        input_schema={
            "type": "object",
            "properties": dict(PAGE_INPUTS),
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": COHORT},
        idempotent=True,
        requires_configuration=QUERY,
    ),
    Operation(
        id="getCohortMembers",
        name="get_cohort_members",
        method="GET",
        path="/cohorts/{cohortId}/users",
        object_name="cohorts",
        handler=get_cohort_members,
        description=(
            "List a cohort's members (user profiles), paged like GET /users with pageSize "
            "and nextPage."
        ),
        vendor_method="POST",
        vendor_path=ENGAGE_PATH + " (filter_by_cohort)",
        input_schema={
            "type": "object",
            "properties": {
                "cohortId": _COHORT_ID,
                **PAGE_INPUTS,
                "pageSize": {**PAGE_INPUTS["pageSize"], "maximum": MAX_PAGE_SIZE},
            },
            "required": ["cohortId"],
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": PROFILE},
        idempotent=True,
        requires_configuration=QUERY,
    ),
)
