"""Changing the simulator's data the way Mixpanel's own clock would see it, so that polling
for changes can be tested end to end (control API, ``/__sim__/...``):

- ``GET``/``POST clock``: the simulator's clock, ``{"advance": seconds}`` moves it on (never
  back); ``{"now": ...}`` is the answer. Only these changes are stamped with it.
- ``POST profile-changes`` ``{"$distinct_id", "$set"?: {...}, "$unset"?: [...]}`` (or a list
  of them): a profile update as Mixpanel's SDKs send it, which also sets ``$last_seen`` to the
  clock (and ``$created``, when the profile is new and the update sets none).
- ``POST events`` ``{"events": [{"event", "properties"}]}``: events as if ingested now; the
  export of their day returns them after the generated ones, each with ``mp_processing_time_ms``
  at the clock, ``time`` (default: the clock) and ``$insert_id`` (default: a random one).
  ``GET events`` lists them, ``DELETE events`` forgets them.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, date, datetime
from typing import Any

_CLOCK = "_changes_clock_offset"
_EVENTS = "_changes_events"


def reset(state: Any) -> None:
    with state.lock:
        setattr(state, _CLOCK, 0.0)
        setattr(state, _EVENTS, [])


def now(state: Any) -> float:
    return time.time() + getattr(state, _CLOCK, 0.0)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _events(state: Any) -> list:
    if not hasattr(state, _EVENTS):
        setattr(state, _EVENTS, [])
    return getattr(state, _EVENTS)


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
    added = []
    for event in events:
        properties = dict(event.get("properties") or {})
        properties.setdefault("time", int(moment))
        properties.setdefault("distinct_id", "user-0")
        properties.setdefault("$insert_id", secrets.token_hex(16))
        properties["mp_processing_time_ms"] = int(moment * 1000)
        added.append({"event": event["event"], "properties": properties})
    with state.lock:
        _events(state).extend(added)
    return added


def export_lines(state: Any, from_date: date, to_date: date, names: list[str] | None):
    """The added events of the export's days, as export lines."""
    with state.lock:
        events = list(_events(state))
    for event in events:
        day = datetime.fromtimestamp(float(event["properties"]["time"]), UTC).date()
        if from_date <= day <= to_date and (names is None or event["event"] in names):
            yield json.dumps(event, separators=(",", ":")) + "\n"


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
            with state.lock:
                return list(_events(state))
        if method == "DELETE":
            with state.lock:
                _events(state).clear()
            return {"status": "ok"}
    return None
