"""Changing the simulator's data the way Mixpanel's own clock would see it, so that polling
for changes can be tested end to end (control API, ``/__sim__/...``):

- ``GET``/``POST clock``: the simulator's clock, ``{"advance": seconds}`` moves it on (never
  back); ``{"now": ...}`` is the answer. Only these changes are stamped with it.
- ``POST profile-changes`` ``{"$distinct_id", "$set"?: {...}, "$unset"?: [...]}`` (or a list
  of them): a profile update as Mixpanel's SDKs send it, which also sets ``$last_seen`` to the
  clock (and ``$created``, when the profile is new and the update sets none).
- ``POST events`` ``{"events": [{"event", "properties"}]}``: events as if ingested now, with
  ``time`` (default: the clock), ``$insert_id`` (default: a random one) and
  ``mp_processing_time_ms`` (the clock); they join the export's added events (``exported.py``,
  with those ``/import`` accepted, also stamped with the clock). ``GET events`` lists them,
  ``DELETE events`` forgets them.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from .exported import ADDED

_CLOCK = "_changes_clock_offset"


def reset(state: Any) -> None:
    with state.lock:
        setattr(state, _CLOCK, 0.0)


def now(state: Any) -> float:
    return time.time() + getattr(state, _CLOCK, 0.0)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def change_profile(state: Any, change: Any) -> dict:
    if not isinstance(change, dict) or not isinstance(change.get("$distinct_id"), str):
        raise ValueError("a profile change needs a string $distinct_id")
    to_set = change.get("$set") or {}
    to_unset = change.get("$unset") or []
    if not isinstance(to_set, dict) or not isinstance(to_unset, list):
        raise ValueError("$set must be an object and $unset a list")
    stamp = _iso(now(state))
    with state.profiles_lock:
        new = state.get_profile(change["$distinct_id"]) is None
        props = state.mutable_profile(change["$distinct_id"])
        props.update(to_set)
        for key in to_unset:
            props.pop(key, None)
        if new and "$created" not in to_set:
            props["$created"] = stamp
        props["$last_seen"] = stamp
        return {"$distinct_id": change["$distinct_id"], "$properties": dict(props)}


def add_events(state: Any, events: Any) -> list:
    if not isinstance(events, list) or not all(
        isinstance(e, dict) and isinstance(e.get("event"), str) for e in events
    ):
        raise ValueError("events must be a list of objects with an event name")
    moment = now(state)
    processing_ms = int(moment * 1000)
    added = []
    for event in events:
        properties = dict(event.get("properties") or {})
        properties.setdefault("time", int(moment))
        properties.setdefault("distinct_id", "user-0")
        properties.setdefault("$insert_id", secrets.token_hex(16))
        properties["mp_processing_time_ms"] = processing_ms
        added.append({"event": event["event"], "properties": properties})
    state.added_events.add(added, source=ADDED, processing_ms=processing_ms)
    return added


def control(method: str, name: str, data: Any, state: Any) -> Any:
    """The answer of a control call this module handles, else None."""
    if name == "clock":
        if method == "POST":
            advance = data.get("advance", 0) if isinstance(data, dict) else None
            if not isinstance(advance, int | float) or isinstance(advance, bool) or advance < 0:
                raise ValueError("advance must be a number of seconds, at least 0")
            with state.lock:
                setattr(state, _CLOCK, getattr(state, _CLOCK, 0.0) + advance)
        if method in ("GET", "POST"):
            return {"now": _iso(now(state)), "offset": getattr(state, _CLOCK, 0.0)}
    if name == "profile-changes" and method == "POST":
        changes = data if isinstance(data, list) else [data]
        return [change_profile(state, change) for change in changes]
    if name == "events":
        if method == "POST":
            return add_events(state, data.get("events") if isinstance(data, dict) else None)
        if method == "GET":
            return state.added_events.events(ADDED)
        if method == "DELETE":
            state.added_events.clear(ADDED)
            return {"status": "ok"}
    return None
