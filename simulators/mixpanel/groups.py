"""Group Analytics (reference part 2, section 3): ``POST /groups`` profile updates and group
profiles queried through engage with ``data_group_id``.

The project's group keys and their data group ids are the ``group_keys`` setting
(``{"company_id": -1405123841946871899}`` by default), as Project Settings would hold them.
Group profiles live in ``state.group_profiles``: ``{(group_key, group_id): properties}``.
"""

from __future__ import annotations

from typing import Any

from . import endpoints as ep
from .state import State

GROUP_OPS = ("$set", "$set_once", "$unset", "$remove", "$union", "$delete")


def validate_group_update(upd: Any) -> str | None:
    """Mixpanel's first complaint about one group update, or None (each operation validated on
    its own: the OpenAPI document's combined schemas are wrong, part 2 section 3.1)."""
    if not isinstance(upd, dict):
        return "data, missing or empty"
    token = upd.get("$token")
    if not isinstance(token, str) or not token:
        return "token, missing or empty"
    for key in ("$group_key", "$group_id"):
        value = upd.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            return f"{key}, missing or empty"
    ops = [op for op in GROUP_OPS if op in upd]
    if len(ops) != 1:
        return "exactly one group operation (" + ", ".join(GROUP_OPS) + ")"
    op, value = ops[0], upd[ops[0]]
    if op == "$delete":
        return None if value in (None, "") else "$delete, must be null or empty"
    if op == "$unset":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            return "$unset, must be a non-empty list of property names"
        return None
    if not isinstance(value, dict):
        return f"{op}, must be an object"
    if op == "$union":
        for items in value.values():
            if not isinstance(items, list) or not items:
                return "$union, values must be non-empty lists"
            if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in items):
                return "$union, list items must be strings or numbers"
    return None


def apply_group_update(state: State, upd: dict) -> None:
    """Apply a validated update (caller holds ``state.profiles_lock``)."""
    key = (str(upd["$group_key"]), str(upd["$group_id"]))
    profiles = state.group_profiles
    if "$delete" in upd:
        profiles.pop(key, None)
        return
    if "$unset" in upd or "$remove" in upd:
        props = profiles.get(key)
        if props is None:  # neither creates a profile
            return
    else:
        props = profiles.setdefault(key, {})
    if "$set" in upd:
        props.update(upd["$set"])
    elif "$set_once" in upd:
        for name, value in upd["$set_once"].items():
            props.setdefault(name, value)
    elif "$unset" in upd:
        for name in upd["$unset"]:
            props.pop(name, None)
    elif "$union" in upd:
        for name, items in upd["$union"].items():
            current = props.get(name)
            merged = list(current) if isinstance(current, list) else []
            merged += [item for item in items if item not in merged]
            props[name] = merged
    elif "$remove" in upd:
        for name, item in upd["$remove"].items():
            current = props.get(name)
            if isinstance(current, list):
                props[name] = [v for v in current if v != item]


def groups_update(ctx, req: ep.Request) -> ep.Reply:
    """``POST /groups``: like ``/engage``, authenticated by ``$token`` in each update."""
    state: State = ctx.state
    updates, refusal = ep._legacy_items(state, req, "engage_max_updates", "updates")
    if refusal:
        return refusal
    valid, first_error = ep._split_valid(updates, validate_group_update)
    if valid:
        with state.profiles_lock:
            for upd in valid:
                apply_group_update(state, upd)
    return ep._legacy_reply(req.params, bool(valid), first_error)


def _group_key_of(state: State, raw: str) -> str:
    try:
        wanted = int(raw)
    except ValueError:
        raise ep.ApiError(400, "data_group_id must be an integer") from None
    for name, data_group_id in state.settings["group_keys"].items():
        if int(data_group_id) == wanted:
            return name
    raise ep.ApiError(400, f"invalid data_group_id: {raw}")


def engage_groups(ctx, req: ep.Request, principal) -> ep.Reply:
    """Engage with ``data_group_id``: the group profiles of that group key, paged as for users;
    ``$distinct_id`` is the group id."""
    state: State = ctx.state
    params = req.params
    group_key = _group_key_of(state, params["data_group_id"])
    page, page_size, session_id = ep.engage_paging(state, params)
    predicate = ep._compile_where(params.get("where"))
    single = params.get("distinct_id")
    wanted = ep._string_list_param(params, "distinct_ids") or ([single] if single else None)
    slot = ep._QuerySlot(state, principal.project_id, "query")
    slot.acquire()
    try:
        with state.profiles_lock:
            matched = state.get_session(session_id) if session_id else None
            if matched is None:
                if session_id:
                    raise ep.ApiError(
                        400, f"session_id {session_id!r} is invalid or expired; start from page 0"
                    )
                matched = [
                    group_id
                    for (key, group_id), props in state.group_profiles.items()
                    if key == group_key
                    and (wanted is None or group_id in wanted)
                    and (predicate is None or predicate.raw(props, None))
                ]
                session_id = state.new_session(matched)
            results = []
            for group_id in matched[page * page_size : (page + 1) * page_size]:
                props = state.group_profiles.get((group_key, group_id))
                if props is not None:
                    results.append({"$distinct_id": group_id, "$properties": dict(props)})
            body = ep.dumps(
                {
                    "page": page,
                    "page_size": page_size,
                    "session_id": session_id,
                    "status": "ok",
                    "total": len(matched),
                    "results": results,
                }
            )
    finally:
        slot.release()
    return 200, body, ep.JSON, None
