"""The GDPR/CCPA API v3 (reference part 2, section 6): data retrievals and deletions.

Every call needs ``?token=<project token>`` and ``Authorization: Bearer <GDPR OAuth token>``
(the ``gdpr_token`` setting); service-account and secret auth are refused. Answers follow the
OpenAPI document: 201 ``{"status": "ok", "results": {"task_id": ...}}`` on create, the task on
GET, 204 on a cancelled deletion and 405 once it can no longer be cancelled. A new task is
``PENDING``; the ``privacy_task_status`` setting (e.g. ``STARTED``) makes new tasks start in
another state, to test the non-cancellable case.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from . import endpoints as ep
from .state import State

KINDS = {"data-retrievals": "retrieval", "data-deletions": "deletion"}
MAX_IDS = {"retrieval": 2000, "deletion": 1999}
COMPLIANCE_TYPES = ("GDPR", "CCPA")
DISCLOSURE_TYPES = ("Data", "Categories", "Sources")
CANCELLABLE = ("PENDING", "STAGING")


def _throttle(state: State) -> None:
    """1 request per second for the GDPR APIs (when rate limits are on); Mixpanel documents
    no Retry-After, the simulator sends one."""
    limits = state.rate_limits
    if not limits["enabled"]:
        return
    now = time.monotonic()
    with state.lock:
        calls = state.privacy_calls
        while calls and now - calls[0] >= 1.0:
            calls.popleft()
        if len(calls) >= limits["gdpr_per_second"]:
            raise ep.ApiError(
                429,
                f"GDPR API rate limit exceeded: at most {limits['gdpr_per_second']} request(s) "
                "per second",
                headers=[("Retry-After", "1")],
            )
        calls.append(now)


def _authorize(state: State, req: ep.Request) -> None:
    _throttle(state)
    header = (req.headers.get("Authorization") or "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ep.ApiError(401, "OAuth token required: Authorization: Bearer <token>")
    if value.strip() != state.settings["gdpr_token"]:
        raise ep.ApiError(401, "Invalid OAuth token")
    token = req.query.get("token")
    if not token:
        raise ep.ApiError(400, "token is a required parameter")
    if token != state.settings["project_token"]:
        raise ep.ApiError(403, "The OAuth token has no access to this project")


def _request_body(req: ep.Request, kind: str) -> dict:
    data = ep._read_json_body(req)
    if not isinstance(data, dict):
        raise ep.ApiError(400, "request body must be a JSON object")
    ids = data.get("distinct_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ep.ApiError(400, "distinct_ids must be a non-empty list of strings")
    if len(ids) > MAX_IDS[kind]:
        raise ep.ApiError(400, f"distinct_ids: at most {MAX_IDS[kind]} ids per request")
    compliance = data.get("compliance_type", "GDPR")
    if compliance not in COMPLIANCE_TYPES:
        raise ep.ApiError(400, "compliance_type must be GDPR or CCPA")
    disclosure = data.get("disclosure_type")
    if disclosure is not None:
        if kind != "retrieval" or compliance != "CCPA":
            raise ep.ApiError(400, "disclosure_type is only for CCPA retrievals")
        if disclosure not in DISCLOSURE_TYPES:
            raise ep.ApiError(400, "disclosure_type must be Data, Categories or Sources")
    return {"distinct_ids": ids, "compliance_type": compliance, "disclosure_type": disclosure}


def create(ctx, req: ep.Request, resource: str) -> ep.Reply:
    state: State = ctx.state
    _authorize(state, req)
    kind = KINDS[resource]
    asked = _request_body(req, kind)
    task_id = str(secrets.randbelow(9 * 10**18) + 10**18)
    task: dict[str, Any] = {
        "kind": kind,
        "tracking_id": task_id,
        "status": state.settings["privacy_task_status"],
        "requesting_user": "sim-owner@example.test",
        "compliance_type": asked["compliance_type"],
        "project_id": state.settings["project_id"],
        "date_requested": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "distinct_ids": asked["distinct_ids"],
    }
    if kind == "retrieval" and asked["compliance_type"] == "CCPA":
        task["disclosure_type"] = asked["disclosure_type"] or "Data"
    with state.lock:
        state.privacy_tasks[task_id] = task
    return ep.ok_json({"status": "ok", "results": {"task_id": task_id}}, status=201)


def _task(state: State, resource: str, task_id: int) -> dict:
    task = state.privacy_tasks.get(str(task_id))
    if task is None or task["kind"] != KINDS[resource]:
        raise ep.ApiError(404, f"no {KINDS[resource]} task {task_id}")
    return task


def status(ctx, req: ep.Request, resource: str, task_id: int) -> ep.Reply:
    state: State = ctx.state
    _authorize(state, req)
    with state.lock:
        task = dict(_task(state, resource, task_id))
    task.pop("kind")
    if resource == "data-retrievals":
        # A finished retrieval links its export; the link is empty until then.
        task["results"] = "" if task["status"] != "SUCCESS" else "https://example.test/export"
    return ep.ok_json({"status": "ok", "results": task})


def cancel(ctx, req: ep.Request, resource: str, task_id: int) -> ep.Reply:
    state: State = ctx.state
    _authorize(state, req)
    with state.lock:
        task = _task(state, resource, task_id)
        if task["status"] not in CANCELLABLE:
            raise ep.ApiError(
                405, f"task {task_id} is {task['status']} and can no longer be cancelled"
            )
        task["status"] = "REVOKED"
    return 204, b"", ep.JSON, None


def routes() -> list:
    """(pattern, {method: handler}) pairs for the server's app routes."""
    import re

    table = []
    for resource in KINDS:
        prefix = f"/api/app/{resource}/v3\\.0"
        table.append(
            (re.compile(prefix + "/?"), {"POST": lambda ctx, req, r=resource: create(ctx, req, r)})
        )
        one = {"GET": lambda ctx, req, task, r=resource: status(ctx, req, r, task)}
        if resource == "data-deletions":
            one["DELETE"] = lambda ctx, req, task, r=resource: cancel(ctx, req, r, task)
        table.append((re.compile(prefix + r"/(\d+)/?"), one))
    return table
