"""Annotations (Mixpanel's app API, reference part 2 §2): list, create, read, update, delete.

The app API takes a service account and the project id in the path; an instance holding the
project's API secret alone can still list annotations, through the older query API list
(``needs.py`` says so: ``QUERY`` for the list, ``SERVICE_ACCOUNT_PROJECT`` for the rest).
``list_annotations`` is the vendor call, kept apart from the operations so that bulk objects
and event pollers can build on it.
"""

from datetime import date, datetime

from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.collections import DAY, PAGE_INPUTS, date_range, page_of, page_start
from elements.mixpanel.needs import QUERY, SERVICE_ACCOUNT_PROJECT
from elements.mixpanel.vendor import uses_service_account
from platform_core.exceptions import ValidationFailed

VENDOR_PATH = "/api/app/projects/{projectId}/annotations"
LEGACY_PATH = "/api/2.0/annotations"  # the list, for an instance with the API secret alone
MIXPANEL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

ANNOTATION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "date": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS, the project's time."},
        "description": {"type": "string"},
        "user": {"type": ["object", "null"]},
        "tags": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["id", "date", "description"],
}


def _path(call: Call, annotation_id: int | None = None) -> str:
    # Reached with a service account only, whose operations all declare project_id (needs.py).
    path = f"/api/app/projects/{int(call.configuration['project_id'])}/annotations"
    return path if annotation_id is None else f"{path}/{annotation_id}"


def _results(response, kind):
    body = response.json()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, kind):
        raise VendorGarbage(
            "Mixpanel's annotation answer had no results.", provider_status=response.status
        )
    return results


def list_annotations(
    call: Call, *, from_date: date | None = None, to_date: date | None = None
) -> tuple[list[dict], int]:
    """The project's annotations between two days (inclusive; either may be open), and the
    vendor's status. An instance with the API secret alone reads the older list
    (``/api/2.0/annotations``), whose records have no ``user`` or ``tags``."""
    days = {
        "from": from_date.isoformat() if from_date else None,
        "to": to_date.isoformat() if to_date else None,
    }
    if uses_service_account(call.configuration):
        query = {"fromDate": days["from"], "toDate": days["to"]}
        response = call.vendor.request("GET", "app", _path(call), query=query, idempotent=True)
        annotations = _results(response, list)
    else:
        query = {"from_date": days["from"], "to_date": days["to"]}
        response = call.vendor.request("GET", "app", LEGACY_PATH, query=query, idempotent=True)
        body = response.json()
        annotations = body.get("annotations") if isinstance(body, dict) else None
        if not isinstance(annotations, list):
            raise VendorGarbage(
                "Mixpanel's annotation list had no annotations.", provider_status=response.status
            )
    if not all(isinstance(a, dict) for a in annotations):
        raise VendorGarbage("Mixpanel's annotation list had non-objects.")
    return annotations, response.status


def get_annotations(call: Call) -> Result:
    start = page_start(call.inputs)
    from_date, to_date = date_range(call.inputs)
    annotations, status = list_annotations(call, from_date=from_date, to_date=to_date)
    page, headers = page_of(annotations, call.inputs, start)
    return Result(page, headers=headers, vendor_status=status)


def _mixpanel_date(value: str) -> str:
    """An annotation date as Mixpanel writes it: ``YYYY-MM-DD HH:MM:SS`` (a day alone is its
    midnight; ISO-8601 with a ``T`` is accepted)."""
    for form in (MIXPANEL_DATE_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value.removesuffix("Z"), form).strftime(MIXPANEL_DATE_FORMAT)
        except ValueError:
            continue
    raise ValidationFailed(
        "date is not a valid date and time.",
        errors=[{"field": "date", "message": "must be YYYY-MM-DD HH:MM:SS (or YYYY-MM-DD)"}],
    )


def create_annotation(call: Call) -> Result:
    body = {
        "date": _mixpanel_date(call.inputs["date"]),
        "description": call.inputs["description"],
    }
    if "tags" in call.inputs:
        body["tags"] = call.inputs["tags"]
    # Not idempotent: a retried create could make two annotations.
    response = call.vendor.request("POST", "app", _path(call), json_body=body)
    return Result(_results(response, dict), vendor_status=response.status)


def get_annotation(call: Call) -> Result:
    response = call.vendor.request("GET", "app", _path(call, call.inputs["id"]))
    return Result(_results(response, dict), vendor_status=response.status)


def update_annotation(call: Call) -> Result:
    body = {k: call.inputs[k] for k in ("description", "tags") if k in call.inputs}
    if not body:
        raise ValidationFailed(
            "Give description or tags to change.",
            errors=[{"field": "description", "message": "give description or tags"}],
        )
    response = call.vendor.request("PATCH", "app", _path(call, call.inputs["id"]), json_body=body)
    return Result(_results(response, dict), vendor_status=response.status)


def delete_annotation(call: Call) -> Result:
    response = call.vendor.request("DELETE", "app", _path(call, call.inputs["id"]))
    return Result({"id": call.inputs["id"], "deleted": True}, vendor_status=response.status)


_ID = {
    "type": "integer",
    "minimum": 1,
    "maximum": 2**63 - 1,
    "x-in": "path",
    "description": "The annotation's id.",
}
_DESCRIPTION = {"type": "string", "minLength": 1, "maxLength": 10000, "pattern": r"\S"}
_TAGS = {
    "type": "array",
    "maxItems": 100,
    "items": {"type": "integer", "minimum": 1},
    "description": "Ids of the project's annotation tags.",
}
_ONE = {
    "type": "object",
    "properties": {"id": _ID},
    "required": ["id"],
    "additionalProperties": False,
}

OPERATIONS = (
    Operation(
        id="getAnnotations",
        name="list_annotations",
        method="GET",
        path="/annotations",
        object_name="annotations",
        handler=get_annotations,
        requires_configuration=QUERY,
        description=(
            "List the project's annotations, optionally between from_date and to_date "
            "(YYYY-MM-DD, inclusive), paged with pageSize and nextPage."
        ),
        vendor_method="GET",
        vendor_path=VENDOR_PATH,
        input_schema={
            "type": "object",
            "properties": {"from_date": DAY, "to_date": DAY, **PAGE_INPUTS},
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": ANNOTATION},
        idempotent=True,
    ),
    Operation(
        id="createAnnotation",
        name="create_annotation",
        method="POST",
        path="/annotations",
        object_name="annotations",
        handler=create_annotation,
        requires_configuration=SERVICE_ACCOUNT_PROJECT,
        description='Create an annotation ({"date": "2026-11-30 12:00:00", "description": ...}).',
        vendor_method="POST",
        vendor_path=VENDOR_PATH,
        input_schema={
            "type": "object",
            "properties": {
                "date": {
                    "type": "string",
                    "maxLength": 20,
                    "description": "YYYY-MM-DD HH:MM:SS (or YYYY-MM-DD: its midnight).",
                },
                "description": _DESCRIPTION,
                "tags": _TAGS,
            },
            "required": ["date", "description"],
            "additionalProperties": False,
        },
        output_schema=ANNOTATION,
    ),
    Operation(
        id="getAnnotation",
        name="get_annotation",
        method="GET",
        path="/annotations/{id}",
        object_name="annotations",
        handler=get_annotation,
        requires_configuration=SERVICE_ACCOUNT_PROJECT,
        description="Read one annotation.",
        vendor_method="GET",
        vendor_path=VENDOR_PATH + "/{annotationId}",
        input_schema=_ONE,
        output_schema=ANNOTATION,
        idempotent=True,
    ),
    Operation(
        id="updateAnnotation",
        name="update_annotation",
        method="PATCH",
        path="/annotations/{id}",
        object_name="annotations",
        handler=update_annotation,
        requires_configuration=SERVICE_ACCOUNT_PROJECT,
        description="Change an annotation's description or tags (Mixpanel keeps its date).",
        vendor_method="PATCH",
        vendor_path=VENDOR_PATH + "/{annotationId}",
        input_schema={
            "type": "object",
            "properties": {"id": _ID, "description": _DESCRIPTION, "tags": _TAGS},
            "required": ["id"],
            "additionalProperties": False,
        },
        output_schema=ANNOTATION,
        idempotent=True,
    ),
    Operation(
        id="deleteAnnotation",
        name="delete_annotation",
        method="DELETE",
        path="/annotations/{id}",
        object_name="annotations",
        handler=delete_annotation,
        requires_configuration=SERVICE_ACCOUNT_PROJECT,
        description="Delete an annotation.",
        vendor_method="DELETE",
        vendor_path=VENDOR_PATH + "/{annotationId}",
        input_schema=_ONE,
        output_schema={
            "type": "object",
            "properties": {"id": {"type": "integer"}, "deleted": {"type": "boolean"}},
            "required": ["id", "deleted"],
        },
        # A retried delete whose first answer was lost would be a misleading 404.
    ),
)
