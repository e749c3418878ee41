"""Endpoint logic: query (engage, events/top), raw export, ingestion, app (service accounts).

Each endpoint takes ``(ctx, req)`` -- ``ctx`` exposes ``state`` and ``faults``, ``req`` is a
:class:`Request` -- and returns a :data:`Reply` tuple or an :class:`ExportStream`.  Errors are
raised as :class:`ApiError`; the server renders them in the envelope of the route's API family.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from . import auth, datagen, exported, ingest
from .data_store import cohort_filter_members
from .selector import SelectorError, compile_selector
from .state import ROLES, State, parse_datetime

__all__ = ["ApiError", "ExportStream", "Reply", "Request"]

Reply = tuple[int, bytes, str, list[tuple[str, str]] | None]

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class Request:
    __slots__ = ("method", "path", "raw_path", "query", "headers", "body", "_params", "parsed")

    def __init__(self, method: str, path: str, raw_path: str, query: dict, headers, body: bytes):
        self.method = method
        self.path = path
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.body = body
        self._params: dict | None = None
        self.parsed: Any = None  # parsed body, kept for cheap request recording

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    @property
    def params(self) -> dict:
        """Query string merged with a form-encoded body (body wins)."""
        if self._params is None:
            params = dict(self.query)
            if self.body and self.content_type == "application/x-www-form-urlencoded":
                params.update(ingest.form_dict(self.body))
            self._params = params
        return self._params


class ExportStream:
    """A streaming JSONL answer; the server writes it chunked (and gzipped if accepted)."""

    __slots__ = ("lines", "faults", "on_close")

    def __init__(self, lines: Iterator[str], faults: dict, on_close: Callable[[], None] | None):
        self.lines = lines
        self.faults = faults
        self.on_close = on_close


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ok_json(obj: Any, status: int = 200) -> Reply:
    return status, dumps(obj), JSON, None


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _int_param(params: dict, name: str, default: int | None, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None
    if value < minimum:
        raise ApiError(400, f"{name} must be >= {minimum}")
    return value


def _json_param(params: dict, name: str) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be valid JSON") from None


def _string_list_param(params: dict, name: str) -> list[str] | None:
    value = _json_param(params, name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ApiError(400, f"{name} must be a JSON array of strings")
    return [str(v) for v in value]


def _compile_where(where: str | None):
    if not where:
        return None
    try:
        return compile_selector(where)
    except SelectorError as exc:
        raise ApiError(400, f"invalid where expression: {exc}") from None


def _auth(ctx, req: Request, api: str) -> auth.Principal:
    try:
        return auth.authenticate(
            ctx.state, req.headers.get("Authorization"), api, req.params.get("project_id")
        )
    except auth.AuthError as exc:
        raise ApiError(exc.status, exc.message) from None


class _QuerySlot:
    """Context manager counting a query/export request against the rate limits."""

    __slots__ = ("state", "project", "kind", "held")

    def __init__(self, state: State, project: int, kind: str) -> None:
        self.state, self.project, self.kind, self.held = state, project, kind, False

    def acquire(self) -> None:
        if not self.state.rate_limits["enabled"]:
            return
        msg = self.state.acquire_query_slot(self.project, self.kind)
        if msg is not None:
            raise ApiError(429, msg)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.state.release_query_slot(self.project, self.kind)


# --------------------------------------------------------------------------------------------
# query API
# --------------------------------------------------------------------------------------------


class _IdRange:
    """All generated profiles ``user-0 .. user-<n-1>`` without materialising a list."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, sl: slice) -> list[str]:
        return [f"user-{i}" for i in range(self.n)[sl]]


def _engage_match(state: State, params: dict) -> Any:
    predicate = _compile_where(params.get("where"))
    ids = _string_list_param(params, "distinct_ids")
    single = params.get("distinct_id")
    if ids is None and single:
        ids = [single]
    try:
        cohort = cohort_filter_members(state, params.get("filter_by_cohort"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if cohort is not None:
        candidates = [did for did in cohort if ids is None or did in ids]
    elif ids is not None:
        seen: set[str] = set()
        candidates = []
        for did in ids:
            if did not in seen and state.get_profile(did) is not None:
                seen.add(did)
                candidates.append(did)
    elif predicate is None and not state.overlay:
        return _IdRange(state.profile_count)
    else:
        candidates = state.iter_profile_ids()
    if predicate is None:
        return list(candidates)
    get = state.get_profile
    pred = predicate.raw  # type: ignore[attr-defined]
    return [did for did in candidates if pred(get(did), None)]


def _engage_params(req: Request) -> dict:
    """Query string and form body, and a JSON object body as Airbyte sends one (reference part 2
    §1.8; its values as the text a form would carry)."""
    params = req.params
    if not req.body or req.content_type != "application/json":
        return params
    try:
        body = json.loads(req.body)
    except ValueError:
        raise ApiError(400, "request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    texts = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
    return {**params, **texts}


def engage_query(ctx, req: Request) -> Reply:
    principal = _auth(ctx, req, auth.QUERY)
    state: State = ctx.state
    params = _engage_params(req)
    max_ps = state.settings["engage_max_page_size"]
    page = _int_param(params, "page", 0)
    page_size = min(_int_param(params, "page_size", max_ps, 1), max_ps)
    session_id = params.get("session_id") or ""
    if page and not session_id:
        raise ApiError(400, "session_id is required when page > 0")
    output = _string_list_param(params, "output_properties")
    if params.get("data_group_id"):
        from .groups import engage_groups  # groups.py builds on this module

        return engage_groups(ctx, req, principal)
    if params.get("behaviors"):
        raise ApiError(400, "behaviors is not supported by the simulator")
    slot = _QuerySlot(state, principal.project_id, "query")
    slot.acquire()
    try:
        with state.profiles_lock:
            matched = state.get_session(session_id) if session_id else None
            if matched is None:
                if session_id and state.settings["engage_unknown_session"] == "error":
                    raise ApiError(
                        400, f"session_id {session_id!r} is invalid or expired; start from page 0"
                    )
                matched = _engage_match(state, params)
                session_id = state.new_session(matched)
            start = page * page_size
            rows = matched[start : start + page_size]
            results = []
            get = state.get_profile
            for did in rows:
                props = get(did)
                if props is None:
                    continue
                if output is not None:
                    props = {k: props[k] for k in output if k in props}
                results.append({"$distinct_id": did, "$properties": props})
            answer = {
                "page": page,
                "page_size": page_size,
                "session_id": session_id,
                "status": "ok",
                "total": len(matched),
                "results": results,
            }
            if page and not state.settings["engage_total_on_later_pages"]:
                del answer["total"]
            body = dumps(answer)
    finally:
        slot.release()
    return 200, body, JSON, None


def events_top(ctx, req: Request) -> Reply:
    principal = _auth(ctx, req, auth.QUERY)
    state: State = ctx.state
    params = req.params
    type_ = params.get("type") or "general"
    if type_ not in ("general", "unique", "average"):
        raise ApiError(400, "type must be one of general, unique, average")
    limit = _int_param(params, "limit", 100)
    slot = _QuerySlot(state, principal.project_id, "query")
    slot.acquire()
    try:
        body = datagen.top_events(state.settings["events_per_day"], type_, limit)
    finally:
        slot.release()
    return ok_json(body)


def export(ctx, req: Request) -> ExportStream:
    principal = _auth(ctx, req, auth.EXPORT)
    state: State = ctx.state
    params = req.params
    raw_from, raw_to = params.get("from_date"), params.get("to_date")
    if not raw_from:
        raise ApiError(400, "'from_date' is a required parameter")
    if not raw_to:
        raise ApiError(400, "'to_date' is a required parameter")
    try:
        from_date = datagen.parse_date(raw_from)
    except ValueError:
        raise ApiError(400, f"'from_date' is invalid: {raw_from!r} is not yyyy-mm-dd") from None
    try:
        to_date = datagen.parse_date(raw_to)
    except ValueError:
        raise ApiError(400, f"'to_date' is invalid: {raw_to!r} is not yyyy-mm-dd") from None
    if from_date > to_date:
        raise ApiError(400, "'from_date' cannot be later than 'to_date'")
    if state.settings["export_reject_future_to_date"] and to_date > datetime.now(UTC).date():
        raise ApiError(400, "to_date cannot be later than today")
    events = _string_list_param(params, "event")
    where = params.get("where") or None
    _compile_where(where)
    limit = _int_param(params, "limit", None, 1)
    max_limit = state.settings["export_max_limit"]
    if limit is not None and max_limit and limit > max_limit:
        raise ApiError(400, f"'limit' must be <= {max_limit}")
    time_in_ms = (params.get("time_in_ms") or "").lower() in ("1", "true")
    slot = _QuerySlot(state, principal.project_id, "export")
    slot.acquire()
    lines = datagen.export_text_lines(
        from_date,
        to_date,
        state.settings["events_per_day"],
        events,
        where=where,
        limit=limit,
        time_in_ms=time_in_ms,
    )
    # What /import accepted and the control API added is exported too (exported.py).
    lines = exported.with_added(
        lines, state.added_events, from_date, to_date, events, where, limit, time_in_ms
    )
    stream_faults = ctx.faults.take_export(req.method, req.path) if ctx.faults.items else {}
    return ExportStream(lines, stream_faults, slot.release)


# --------------------------------------------------------------------------------------------
# ingestion
# --------------------------------------------------------------------------------------------


def _ingest_rate_limit(state: State, events: int, nbytes: int) -> None:
    if state.rate_limits["enabled"] and not state.ingest_allowed(
        state.settings["project_id"], events, nbytes
    ):
        raise ApiError(429, INGEST_429)


INGEST_429 = "Project exceeded rate limits. Please retry the request with exponential backoff."


def _legacy_reply(params: dict, ok: bool, error: str | None) -> Reply:
    """``1``/``0`` or verbose JSON, with optional JSONP callback / pixel (track, engage)."""
    if params.get("img") == "1":
        return 200, _GIF, "image/gif", None
    if params.get("verbose") == "1":
        body = dumps({"error": None if ok else error, "status": 1 if ok else 0})
        ctype = JSON
    else:
        body = b"1" if ok else b"0"
        ctype = TEXT
    callback = params.get("callback")
    if callback:
        return 200, callback.encode() + b"(" + body + b")", "application/javascript", None
    return 200, body, ctype, None


_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _legacy_payload(req: Request) -> Any:
    """Events/updates from ``data=`` (form body or query string) or a JSON body."""
    params = req.params
    if "data" in params:
        payload = ingest.decode_data_param(params["data"])
    elif req.body:
        if req.content_type == "application/x-www-form-urlencoded":
            raise ingest.PayloadError("data, missing or empty")
        try:
            payload = json.loads(req.body)
        except ValueError:
            try:
                payload = ingest.decode_data_param(req.body.decode("utf-8", "replace"))
            except ingest.PayloadError:
                raise ingest.PayloadError("data, invalid JSON") from None
    else:
        raise ingest.PayloadError("data, missing or empty")
    req.parsed = payload
    if isinstance(payload, dict):
        return [payload]
    if not isinstance(payload, list) or not payload:
        raise ingest.PayloadError("data, missing or empty")
    return payload


def _legacy_items(state: State, req: Request, limit_setting: str, noun: str):
    """The payload of a track or engage call as (items, None), or (None, the reply refusing it)."""
    try:
        items = _legacy_payload(req)
    except ingest.PayloadError as exc:
        return None, _legacy_reply(req.params, False, str(exc))
    limit = state.settings[limit_setting]
    if len(items) > limit:
        return None, _legacy_reply(req.params, False, f"data, too many {noun} (max {limit})")
    return items, None


def _split_valid(items: list, check) -> tuple[list, str | None]:
    """The items ``check`` passes, and the first error it found (the legacy reply names one)."""
    valid, first_error = [], None
    for item in items:
        err = check(item)
        if err is None:
            valid.append(item)
        elif first_error is None:
            first_error = err
    return valid, first_error


def track(ctx, req: Request) -> Reply:
    state: State = ctx.state
    events, refusal = _legacy_items(state, req, "track_max_events", "events")
    if refusal:
        return refusal
    _ingest_rate_limit(state, len(events), len(req.body))
    max_age = state.settings["track_max_age_days"]
    now = time.time()
    valid, first_error = _split_valid(
        events, lambda ev: ingest.validate_track_event(ev, max_age, now)
    )
    if valid:
        state.add_tracked(valid)
    return _legacy_reply(req.params, bool(valid), first_error)


def engage_update(ctx, req: Request) -> Reply:
    state: State = ctx.state
    params = req.params
    updates, refusal = _legacy_items(state, req, "engage_max_updates", "updates")
    if refusal:
        return refusal
    token_required = True
    if req.headers.get("Authorization"):
        try:
            auth.authenticate(
                state, req.headers.get("Authorization"), auth.INGEST, params.get("project_id")
            )
            token_required = False
        except auth.AuthError:
            token_required = True
    valid, first_error = _split_valid(
        updates, lambda upd: ingest.validate_profile_update(upd, token_required)
    )
    if valid:
        with state.profiles_lock:
            for upd in valid:
                ingest.apply_profile_update(state, upd)
            state.engage_updates_count += len(valid)
    return _legacy_reply(params, bool(valid), first_error)


def import_events(ctx, req: Request) -> Reply:
    state: State = ctx.state
    params = req.params
    _auth(ctx, req, auth.IMPORT)
    strict_raw = (params.get("strict") or "1").lower()
    if strict_raw not in ("0", "1", "true", "false"):
        raise ApiError(400, "'strict' is invalid: must be 0 or 1")
    strict = strict_raw in ("1", "true")
    if req.content_type == "application/x-www-form-urlencoded":
        return _legacy_import(ctx, req, strict)
    try:
        events = ingest.parse_import_body(req.body, req.content_type)
    except ingest.PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    req.parsed = events
    max_events = state.settings["import_max_events"]
    if len(events) > max_events:
        raise ApiError(413, f"request exceeds max limit of {max_events} events")
    _ingest_rate_limit(state, len(events), len(req.body))
    now = time.time()
    valid = []
    failed = []
    for i, ev in enumerate(events):
        err = ingest.validate_import_event(ev, strict, now)
        if err is None:
            with state.lock:  # $merge, $create_alias: as the ID-management version allows
                err = state.data_management.identity_error(ev)
        if err is None:
            valid.append(ev)
        else:
            failed.append(
                {
                    "index": i,
                    "insert_id": ingest.insert_id_of(ev),
                    "field": err[0],
                    "message": err[1],
                }
            )
    if valid:
        state.add_imported(valid)
    if failed and strict:
        return ok_json(
            {
                "code": 400,
                "error": "some data points in the request failed validation",
                "status": "Bad Request",
                "num_records_imported": len(valid),
                "failed_records": failed,
            },
            400,
        )
    return ok_json({"code": 200, "num_records_imported": len(valid), "status": "OK"})


def _legacy_import(ctx, req: Request, strict: bool) -> Reply:
    """Form-encoded ``data=`` /import used by old SDKs: answers like /track."""
    state: State = ctx.state
    params = req.params
    try:
        events = _legacy_payload(req)
    except ingest.PayloadError as exc:
        return _legacy_reply(params, False, str(exc))
    if len(events) > state.settings["import_max_events"]:
        raise ApiError(
            413, f"request exceeds max limit of {state.settings['import_max_events']} events"
        )
    now = time.time()
    valid = []
    first_error = None
    for ev in events:
        err = ingest.validate_import_event(ev, strict and "strict" in params, now)
        if err is None:
            valid.append(ev)
        elif first_error is None:
            first_error = err[1] if ev else "data, missing or empty"
    if valid:
        state.add_imported(valid)
    return _legacy_reply(params, bool(valid), first_error)


# --------------------------------------------------------------------------------------------
# app API (service accounts)
# --------------------------------------------------------------------------------------------

_PERMISSIONS = {
    "owner": [
        "view_project",
        "query_data",
        "export_data",
        "import_data",
        "edit_project",
        "manage_service_accounts",
        "delete_project",
    ],
    "admin": [
        "view_project",
        "query_data",
        "export_data",
        "import_data",
        "edit_project",
        "manage_service_accounts",
    ],
    "analyst": ["view_project", "query_data", "export_data"],
    "consumer": ["view_project", "query_data"],
}


def _app_sa(ctx, req: Request, org: int | None) -> auth.Principal:
    principal = _auth(ctx, req, auth.APP)
    if org is not None and org != ctx.state.settings["organization_id"]:
        raise ApiError(403, f"You do not have access to organization {org}")
    return principal


def _require_admin(principal: auth.Principal) -> None:
    if principal.sa is None or principal.sa.role not in ("owner", "admin"):
        raise ApiError(403, "Only owner or admin service accounts can manage service accounts")


def _read_json_body(req: Request) -> Any:
    if not req.body:
        raise ApiError(400, "request body must be JSON")
    try:
        data = json.loads(req.body)
    except ValueError:
        raise ApiError(400, "request body must be valid JSON") from None
    req.parsed = data
    return data


def app_me(ctx, req: Request) -> Reply:
    principal = _app_sa(ctx, req, None)
    sa = principal.sa
    s = ctx.state.settings
    projects = {
        str(pid): {
            "id": pid,
            "name": "Simulated Project" if pid == s["project_id"] else f"Project {pid}",
            "organization_id": s["organization_id"],
            "role": role,
            "permissions": list(_PERMISSIONS.get(role, [])),
        }
        for pid, role in sa.projects.items()
    }
    return ok_json(
        {
            "status": "ok",
            "results": {
                "id": sa.id,
                "name": sa.username,
                "user_name": sa.username,
                "email": None,
                "projects": projects,
                "organizations": {
                    str(s["organization_id"]): {
                        "id": s["organization_id"],
                        "name": "Simulated Organization",
                        "role": sa.role,
                    }
                },
            },
        }
    )


def _validate_role(value: Any, where: str) -> str:
    if value not in ROLES:
        raise ApiError(400, f"{where} must be one of {', '.join(ROLES)}")
    return value


def sa_list(ctx, req: Request, org: int) -> Reply:
    _app_sa(ctx, req, org)
    with ctx.state.lock:
        results = [sa.read() for sa in ctx.state.service_accounts.values()]
    return ok_json({"status": "ok", "results": results})


def sa_create(ctx, req: Request, org: int) -> Reply:
    principal = _app_sa(ctx, req, org)
    _require_admin(principal)
    body = _read_json_body(req)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    unknown = [k for k in body if k not in ("username", "role", "expires", "projects")]
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    name = body.get("username")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "username is required and must be a non-empty string")
    role = _validate_role(body.get("role", "consumer"), "role")
    expires = body.get("expires")
    if expires is not None and (not isinstance(expires, str) or parse_datetime(expires) is None):
        raise ApiError(400, "expires must be an ISO 8601 date-time or null")
    projects_raw = body.get("projects", [])
    if projects_raw is None:
        projects_raw = []
    if not isinstance(projects_raw, list):
        raise ApiError(400, "projects must be a list of {id, role} objects")
    projects: dict[int, str] = {}
    for item in projects_raw:
        if not isinstance(item, dict) or isinstance(item.get("id"), bool):
            raise ApiError(400, "projects must be a list of {id, role} objects")
        pid = item.get("id")
        if not isinstance(pid, int):
            raise ApiError(400, "projects[].id must be an integer")
        projects[pid] = _validate_role(item.get("role", role), "projects[].role")
    sa, secret = ctx.state.create_service_account(
        name.strip(), role, expires, projects, principal.sa.id
    )
    results = sa.read()
    results["token"] = secret
    return ok_json({"status": "ok", "results": results}, 201)


def sa_get(ctx, req: Request, org: int, sa_id: int) -> Reply:
    _app_sa(ctx, req, org)
    sa = ctx.state.service_accounts.get(sa_id)
    if sa is None:
        raise ApiError(404, f"Service account {sa_id} not found")
    if ctx.state.settings["sa_get_enveloped"]:
        return ok_json({"status": "ok", "results": sa.read()})
    return ok_json(sa.read())


def sa_delete(ctx, req: Request, org: int, sa_id: int) -> Reply:
    principal = _app_sa(ctx, req, org)
    _require_admin(principal)
    if not ctx.state.delete_service_account(sa_id):
        raise ApiError(404, f"Service account {sa_id} not found")
    return ok_json({"status": "ok"})


def _int_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ApiError(400, f"{where} must be a list of integers")
    return value


def sa_add_to_project(ctx, req: Request, org: int) -> Reply:
    principal = _app_sa(ctx, req, org)
    _require_admin(principal)
    body = _read_json_body(req)
    if not isinstance(body, dict) or "projects" not in body or "service_account_ids" not in body:
        raise ApiError(400, "projects and service_account_ids are required")
    ids = _int_list(body["service_account_ids"], "service_account_ids")
    if not isinstance(body["projects"], list):
        raise ApiError(400, "projects must be a list of {id, role} objects")
    pairs = []
    for item in body["projects"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise ApiError(400, "projects[].id must be an integer")
        pairs.append((item["id"], _validate_role(item.get("role"), "projects[].role")))
    state: State = ctx.state
    with state.lock:
        missing = [i for i in ids if i not in state.service_accounts]
        if missing:
            raise ApiError(404, f"Service account {missing[0]} not found")
        for i in ids:
            for pid, role in pairs:
                state.service_accounts[i].projects[pid] = role
    return ok_json({"status": "ok"})


def sa_remove_from_project(ctx, req: Request, org: int) -> Reply:
    principal = _app_sa(ctx, req, org)
    _require_admin(principal)
    body = _read_json_body(req)
    if not isinstance(body, dict) or not isinstance(body.get("projects"), list):
        raise ApiError(400, "projects is required")
    state: State = ctx.state
    plan = []
    for item in body["projects"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise ApiError(400, "projects[].id must be an integer")
        plan.append((item["id"], _int_list(item.get("service_account_ids"), "service_account_ids")))
    with state.lock:
        for pid, ids in plan:
            for i in ids:
                sa = state.service_accounts.get(i)
                if sa is not None:
                    sa.projects.pop(pid, None)
    return ok_json({"status": "ok"})


def project_sa_list(ctx, req: Request, project: int) -> Reply:
    principal = _app_sa(ctx, req, None)
    state: State = ctx.state
    if project != state.settings["project_id"]:
        raise ApiError(404, f"Project {project} not found")
    if project not in principal.sa.projects:
        raise ApiError(403, f"You do not have access to project {project}")
    results = []
    with state.lock:
        for sa in state.service_accounts.values():
            role = sa.projects.get(project)
            if role is None:
                continue
            row = sa.read()
            row.update(
                {
                    "hasSensitiveAccess": False,
                    "role": role,
                    "role_order": ROLES.index(role),
                    "target_type": "individual",
                    "email": "",
                }
            )
            results.append(row)
    return ok_json({"status": "ok", "results": results})
