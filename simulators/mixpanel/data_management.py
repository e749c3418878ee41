"""Data-management endpoints: cohorts (query API), annotations (app API), lookup tables
(ingestion host) and their control endpoints (reference part 2, sections 1.8, 2 and 5).

Identity events (``$merge``, ``$create_alias``, ``$identify``) arrive through ``/import``;
``endpoints.import_events`` asks ``DataStore.identity_error`` about each one, which follows
the project's ID-management version (``POST /__sim__/identity``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import auth
from .data_store import ID_MANAGEMENT_VERSIONS, DataStore, parse_annotation_date
from .endpoints import JSON, ApiError, Reply, Request, _auth, _QuerySlot, dumps, ok_json
from .selector import SelectorError

LOOKUP_TABLE_MAX_BYTES = 100 * 1024 * 1024  # uncompressed (reference part 2 §5)
LOOKUP_TABLE_CALLS_PER_DAY = 100
LOOKUP_TABLE_MAX_REPORTED_ROWS = 10
WRITER_ROLES = ("owner", "admin", "analyst")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
REASONS.update({413: "Request Entity Too Large", 415: "Unsupported Media Type"})
REASONS[429] = "Too Many Requests"


def store(state: Any) -> DataStore:
    return state.data_management


# --- cohorts (query API) ----------------------------------------------------------------------


def cohorts_list(ctx, req: Request) -> Reply:
    """``GET|POST /api/query/cohorts/list``: a bare array (reference part 2 §1.8)."""
    principal = _auth(ctx, req, auth.QUERY)
    state = ctx.state
    slot = _QuerySlot(state, principal.project_id, "query")
    slot.acquire()
    try:
        with state.profiles_lock, state.lock:
            data = store(state)
            project_id = state.settings["project_id"]
            cohorts = [data.cohort_view(state, c, project_id) for c in data.cohorts.values()]
    finally:
        slot.release()
    return ok_json(cohorts)


# --- annotations (app API) --------------------------------------------------------------------


def _project_member(ctx, req: Request, project_id: int, *, write: bool) -> None:
    principal = _auth(ctx, req, auth.APP)
    role = principal.sa.projects.get(project_id) if principal.sa else None
    if role is None or project_id != ctx.state.settings["project_id"]:
        raise ApiError(403, f"User is not a member of project {project_id}")
    if write and role not in WRITER_ROLES:
        raise ApiError(403, "Annotations can only be changed by an analyst, admin or owner")


def _json_object(req: Request) -> dict:
    try:
        data = json.loads(req.body) if req.body else None
    except ValueError:
        raise ApiError(400, "request body must be valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    req.parsed = data
    return data


def _date_param(req: Request, name: str):
    raw = req.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise ApiError(400, f"{name} must be formatted yyyy-mm-dd") from None


def _annotation_fields(data: DataStore, body: dict, allowed: set[str]) -> dict:
    unknown = set(body) - allowed
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    fields: dict[str, Any] = {}
    if "date" in body:
        try:
            fields["date"] = parse_annotation_date(body["date"], "date")
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    if "description" in body:
        if not isinstance(body["description"], str) or not body["description"].strip():
            raise ApiError(400, "description must be a non-empty string")
        fields["description"] = body["description"]
    if "tags" in body:
        try:
            fields["tags"] = data.check_tags(body["tags"])
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    return fields


def annotations(ctx, req: Request, project_id: int) -> Reply:
    state = ctx.state
    if req.method == "GET":
        _project_member(ctx, req, project_id, write=False)
        from_date, to_date = _date_param(req, "fromDate"), _date_param(req, "toDate")
        if from_date and to_date and from_date > to_date:
            raise ApiError(400, "fromDate must not be after toDate")
        with state.lock:
            data = store(state)
            results = []
            for annotation in sorted(data.annotations.values(), key=lambda a: a["date"]):
                if _within(annotation, from_date, to_date):
                    results.append(data.annotation_view(annotation))
        return ok_json({"status": "ok", "results": results})
    _project_member(ctx, req, project_id, write=True)
    body = _json_object(req)
    with state.lock:
        data = store(state)
        fields = _annotation_fields(data, body, {"date", "description", "tags"})
        for required in ("date", "description"):
            if required not in fields:
                raise ApiError(400, f"{required} is required")
        annotation = data.add_annotation(
            date=fields["date"], description=fields["description"], tags=fields.get("tags", [])
        )
        return ok_json({"status": "ok", "results": data.annotation_view(annotation)}, 201)


def legacy_annotations(ctx, req: Request) -> Reply:
    """``GET /api/2.0/annotations`` (``from_date``, ``to_date``): the older list that takes the
    project's API secret too, as Airbyte and tap-mixpanel call it (reference part 2 §2)."""
    _auth(ctx, req, auth.QUERY)
    state = ctx.state
    from_date, to_date = _date_param(req, "from_date"), _date_param(req, "to_date")
    with state.lock:
        found = sorted(store(state).annotations.values(), key=lambda a: a["date"])
        project_id = state.settings["project_id"]
        results = [
            {
                "id": a["id"],
                "project_id": project_id,
                "date": a["date"],
                "description": a["description"],
            }
            for a in found
            if _within(a, from_date, to_date)
        ]
    return ok_json({"annotations": results})


def _within(annotation: dict, from_date, to_date) -> bool:
    day = datetime.strptime(annotation["date"][:10], "%Y-%m-%d").date()
    return not ((from_date and day < from_date) or (to_date and day > to_date))


def annotation(ctx, req: Request, project_id: int, annotation_id: int) -> Reply:
    state = ctx.state
    _project_member(ctx, req, project_id, write=req.method != "GET")
    body = _json_object(req) if req.method == "PATCH" else None
    with state.lock:
        data = store(state)
        found = data.annotations.get(annotation_id)
        if found is None:
            raise ApiError(404, f"Annotation {annotation_id} not found")
        if req.method == "DELETE":
            del data.annotations[annotation_id]
            return ok_json({"status": "ok", "results": {"id": annotation_id}})
        if body is not None:
            # The PATCH schema has description and tags only: a date cannot change.
            found.update(_annotation_fields(data, body, {"description", "tags"}))
        return ok_json({"status": "ok", "results": data.annotation_view(found)})


# --- lookup tables (ingestion host) -----------------------------------------------------------


def _ingestion_error(status: int, message: str, **extra: Any) -> Reply:
    body = {"code": status, "error": message, "status": REASONS.get(status, "Error"), **extra}
    return status, dumps(body), JSON, None


def _lookup_auth(ctx, req: Request, *, service_account_only: bool) -> Reply | None:
    try:
        principal = auth.authenticate(
            ctx.state, req.headers.get("Authorization"), auth.QUERY, req.query.get("project_id")
        )
    except auth.AuthError as exc:
        if exc.status in (400, 403):
            return _ingestion_error(exc.status, exc.message)
        return _ingestion_error(401, "Invalid credentials")
    if service_account_only and principal.kind != "sa":
        return _ingestion_error(401, "Invalid credentials")
    return None


def lookup_tables(ctx, req: Request) -> Reply:
    refused = _lookup_auth(ctx, req, service_account_only=True)
    if refused is not None:
        return refused
    with ctx.state.lock:
        tables = store(ctx.state).lookup_tables.values()
        results = [{"id": t["id"], "name": t["name"]} for t in tables]
    return ok_json({"code": 200, "status": "OK", "results": results})


def _csv_rows(body: bytes) -> tuple[list[list[str]] | None, list[dict]]:
    """The rows of a CSV table (header first), or the failed records (reference part 2 §5)."""
    try:
        text = body.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as exc:
        return None, [{"index": 0, "message": f"invalid csv: {exc}"}]
    rows = [row for row in rows if row]  # a trailing newline is no row
    if not rows:
        return None, [{"index": 0, "message": "the csv has no header row"}]
    header = rows[0]
    failed = []
    if len(header) < 2:
        failed.append({"index": 0, "message": "invalid header: at least 2 columns are required"})
    elif len(set(header)) != len(header) or any(not name.strip() for name in header):
        failed.append({"index": 0, "message": "invalid header: column names must be unique"})
    keys: dict[str, int] = {}
    for index, row in enumerate(rows[1:], start=1):
        if len(failed) >= LOOKUP_TABLE_MAX_REPORTED_ROWS:
            break
        if len(row) != len(header):
            failed.append({"index": index, "message": "invalid row: wrong number of fields"})
        elif not row[0].strip():
            failed.append(
                {"index": index, "message": "primary key is required and cannot be blank"}
            )
        elif row[0] in keys:
            failed.append(
                {
                    "index": index,
                    "message": f"invalid row: row indexes {keys[row[0]]} and {index} have "
                    "the same primary key",
                }
            )
        else:
            keys[row[0]] = index
    return (None if failed else rows), failed


def replace_lookup_table(ctx, req: Request, table_id: str) -> Reply:
    refused = _lookup_auth(ctx, req, service_account_only=False)
    if refused is not None:
        return refused
    state = ctx.state
    with state.lock:
        if table_id not in store(state).lookup_tables:
            return _ingestion_error(404, f"Lookup table with id '{table_id}' was not found.")
    if req.content_type != "text/csv":
        return _ingestion_error(415, "Content-Type must be text/csv")
    if len(req.body) > LOOKUP_TABLE_MAX_BYTES:
        return _ingestion_error(413, f"request exceeds max limit of {LOOKUP_TABLE_MAX_BYTES} bytes")
    rows, failed = _csv_rows(req.body)
    if rows is None:
        return _ingestion_error(
            400, "Some data points in the request failed validation.", failed_records=failed
        )
    with state.lock:
        data = store(state)
        if not data.count_lookup_table_call(LOOKUP_TABLE_CALLS_PER_DAY):
            return _ingestion_error(429, "Project exceeded rate limits. Please retry later.")
        table = data.lookup_tables[table_id]
        table["header"], table["rows"] = rows[0], rows[1:]  # all or nothing
    return ok_json({"code": 200, "status": "OK"})


# --- routing ----------------------------------------------------------------------------------

_PROJECT = r"/api/app/projects/(\d+)"
_ROUTES: list[tuple[re.Pattern, dict[str, Callable], Callable]] = [
    (re.compile(_PROJECT + r"/annotations/?"), {"GET": annotations, "POST": annotations}, int),
    (
        re.compile(_PROJECT + r"/annotations/(\d+)/?"),
        {"GET": annotation, "PATCH": annotation, "DELETE": annotation},
        int,
    ),
    (re.compile(r"/lookup-tables/?"), {"GET": lookup_tables}, str),
    (re.compile(r"/lookup-tables/([^/]+)/?"), {"PUT": replace_lookup_table}, str),
]


def query_routes(family: str) -> dict[str, tuple[str, tuple[str, ...], Any]]:
    """Exact-path routes of the query API, for ``server.ROUTES``."""
    routes = {
        f"{prefix}/cohorts/list": (family, ("GET", "POST"), cohorts_list)
        for prefix in ("/api/query", "/api/2.0")
    }
    routes["/api/2.0/annotations"] = (family, ("GET",), legacy_annotations)
    return routes


def match(method: str, path: str) -> Callable[[Any, Request], Reply] | None:
    """The endpoint for ``method path`` with its path arguments bound, None when no route of
    this module has the path; 405 when one has it for other methods."""
    for pattern, methods, convert in _ROUTES:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        endpoint = methods.get(method)
        if endpoint is None:
            raise ApiError(405, f"method {method} not allowed on {path}")
        args = [convert(g) for g in found.groups()]
        return lambda ctx, req: endpoint(ctx, req, *args)
    return None


# --- control API ------------------------------------------------------------------------------


def control(method: str, name: str, data: Any, state: Any) -> Any:
    """``/__sim__/cohorts``, ``/__sim__/annotations``, ``/__sim__/lookup-tables`` and
    ``/__sim__/identity``; None for any other name. Raises ValueError (400)."""
    head, _, rest = name.partition("/")
    if head not in ("cohorts", "annotations", "lookup-tables", "identity"):
        return None
    with state.profiles_lock, state.lock:
        dm = store(state)
        try:
            if head == "identity":
                if method == "POST":
                    version = data.get("id_management") if isinstance(data, dict) else None
                    if version not in ID_MANAGEMENT_VERSIONS:
                        raise ValueError(
                            f"id_management must be one of {', '.join(ID_MANAGEMENT_VERSIONS)}"
                        )
                    dm.id_management = version
                return dm.identity_view() if method in ("GET", "POST") else None
            if head == "lookup-tables":
                return list(dm.lookup_tables.values()) if method == "GET" and not rest else None
            item_id = _control_id(rest)
            if head == "cohorts":
                return _control_cohorts(method, item_id, data, state, dm)
            return _control_annotations(method, item_id, data, dm)
        except KeyError:
            return None
        except SelectorError as exc:
            raise ValueError(str(exc)) from None


def _control_id(rest: str) -> int | None:
    if not rest:
        return None
    if not rest.isdigit():
        raise KeyError(rest)
    return int(rest)


def _control_cohorts(method, cohort_id, data, state, dm: DataStore) -> Any:
    project_id = state.settings["project_id"]

    def view(cohort):
        return {
            **dm.cohort_view(state, cohort, project_id),
            "members": dm.cohort_members(state, cohort),
        }

    if cohort_id is None:
        if method == "GET":
            return [view(c) for c in dm.cohorts.values()]
        if method == "POST":
            return view(dm.put_cohort(data))
        return None
    if method == "GET":
        return view(dm.cohorts[cohort_id])
    if method == "PATCH":
        return view(dm.put_cohort(data, cohort_id))
    if method == "DELETE":
        del dm.cohorts[cohort_id]
        return {"status": "ok"}
    return None


def _control_annotations(method, annotation_id, data, dm: DataStore) -> Any:
    if annotation_id is None:
        if method == "GET":
            return [dm.annotation_view(a) for a in dm.annotations.values()]
        if method == "POST":
            return dm.annotation_view(dm.put_annotation(data))
        return None
    if method == "GET":
        return dm.annotation_view(dm.annotations[annotation_id])
    if method == "PATCH":
        return dm.annotation_view(dm.put_annotation(data, annotation_id))
    if method == "DELETE":
        del dm.annotations[annotation_id]
        return {"status": "ok"}
    return None
