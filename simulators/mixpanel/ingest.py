"""Ingestion payload parsing and validation: ``/import``, ``/track``, ``/engage`` updates.

Pure functions over already-read request bodies; the server does HTTP and auth.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "DENY_LIST",
    "PROFILE_OPS",
    "PayloadError",
    "apply_profile_update",
    "decode_data_param",
    "parse_import_body",
    "validate_import_event",
    "validate_profile_update",
    "validate_track_event",
]

# 1971-01-01T00:00:00Z
MIN_EVENT_TIME = 31_536_000
MS_THRESHOLD = 100_000_000_000  # larger values are milliseconds

DENY_LIST = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "true",
        "false",
        "[]",
        "{}",
    }
)
_INSERT_ID_RE = re.compile(r"[A-Za-z0-9-]{1,36}")

PROFILE_OPS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")


class PayloadError(ValueError):
    """The request body cannot be parsed at all."""


# --------------------------------------------------------------------------------------------
# body decoding
# --------------------------------------------------------------------------------------------


def decode_data_param(value: str) -> Any:
    """Decode a ``data=`` form/query value: JSON text or base64 (std or url-safe) JSON."""
    text = value.strip()
    if not text:
        raise PayloadError("data, missing or empty")
    if text[0] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PayloadError("data, invalid JSON") from exc
    padded = text + "=" * (-len(text) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decoder(padded)
            return json.loads(raw)
        except (binascii.Error, ValueError):
            continue
    raise PayloadError("data, invalid JSON or base64")


def form_dict(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def parse_import_body(body: bytes, content_type: str) -> list:
    """Parse a JSON array / single object / NDJSON body into a list of events."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        return _parse_ndjson(body)
    try:
        data = json.loads(body)
    except ValueError:
        if b"\n" in body.strip():
            return _parse_ndjson(body)
        raise PayloadError("unable to parse request body as JSON") from None
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise PayloadError("request body must be a JSON array of events")
    return data


def _parse_ndjson(body: bytes) -> list:
    out = []
    for lineno, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            raise PayloadError(f"unable to parse line {lineno} of NDJSON body") from None
    return out


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


def _denied(value: Any) -> bool:
    return str(value).strip().lower() in DENY_LIST


def validate_import_event(
    ev: Any, strict: bool, now: float | None = None
) -> tuple[str, str] | None:
    """Return ``(field, message)`` for an invalid /import event, None when valid."""
    if not isinstance(ev, dict):
        return "", "data point must be a JSON object"
    name = ev.get("event")
    if not isinstance(name, str) or not name.strip():
        return "event", "'event' is invalid: must be a non-empty string"
    props = ev.get("properties")
    if not isinstance(props, dict):
        return "properties", "'properties' is invalid: must be a JSON object"
    t = props.get("time")
    if isinstance(t, bool) or not isinstance(t, int | float):
        return (
            "properties.time",
            "'properties.time' is invalid: must be specified as seconds since epoch",
        )
    seconds = t / 1000.0 if t > MS_THRESHOLD else float(t)
    if seconds < MIN_EVENT_TIME:
        return "properties.time", "'properties.time' is invalid: must be after 1971-01-01"
    if now is None:
        now = time.time()
    if seconds > now + 3600:
        return (
            "properties.time",
            "'properties.time' is invalid: must not be more than 1 hour in the future",
        )
    if "distinct_id" not in props:
        return "properties.distinct_id", "'properties.distinct_id' is required"
    did = props["distinct_id"]
    if isinstance(did, bool) or not isinstance(did, str | int | float):
        return "properties.distinct_id", "'properties.distinct_id' is invalid: must be a string"
    if did != "" and _denied(did):
        return (
            "properties.distinct_id",
            f"'properties.distinct_id' is invalid: {str(did)!r} is not an allowed value",
        )
    if "$insert_id" in props or strict:
        iid = props.get("$insert_id")
        if iid is None:
            return "properties.$insert_id", "'properties.$insert_id' is required in strict mode"
        if not isinstance(iid, str) or not _INSERT_ID_RE.fullmatch(iid):
            return (
                "properties.$insert_id",
                "'properties.$insert_id' is invalid: must be 1-36 characters of [A-Za-z0-9-]",
            )
        if _denied(iid):
            return (
                "properties.$insert_id",
                f"'properties.$insert_id' is invalid: {iid!r} is not an allowed value",
            )
    return None


def insert_id_of(ev: Any) -> Any:
    if isinstance(ev, dict):
        props = ev.get("properties")
        if isinstance(props, dict):
            iid = props.get("$insert_id")
            if isinstance(iid, str):
                return iid
    return None


def validate_track_event(ev: Any, max_age_days: int, now: float | None = None) -> str | None:
    """Return the /track error message for an invalid event, None when valid."""
    if not isinstance(ev, dict):
        return "data, missing or empty"
    name = ev.get("event")
    if not isinstance(name, str) or not name:
        return "event, missing or empty"
    props = ev.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        return "properties, must be an object"
    token = props.get("token")
    if not isinstance(token, str) or not token:
        return "token, missing or empty"
    t = props.get("time")
    if t is not None:
        if isinstance(t, bool) or not isinstance(t, int | float):
            return "time, must be a number"
        if max_age_days:
            seconds = t / 1000.0 if t > MS_THRESHOLD else float(t)
            if now is None:
                now = time.time()
            if seconds < now - max_age_days * 86400:
                return f"event more than {max_age_days} days old; use /import"
    return None


# --------------------------------------------------------------------------------------------
# profile updates
# --------------------------------------------------------------------------------------------


def validate_profile_update(upd: Any, token_required: bool) -> str | None:
    if not isinstance(upd, dict):
        return "data, missing or empty"
    if token_required:
        token = upd.get("$token")
        if not isinstance(token, str) or not token:
            return "token, missing or empty"
    did = upd.get("$distinct_id")
    if isinstance(did, bool) or not isinstance(did, str | int) or did == "":
        return "$distinct_id, missing or empty"
    ops = [op for op in PROFILE_OPS if op in upd]
    if not ops:
        return "no profile operation (" + ", ".join(PROFILE_OPS) + ")"
    for op in ops:
        value = upd[op]
        if op == "$delete":
            continue
        if op == "$unset":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "$unset, must be a list of property names"
            continue
        if not isinstance(value, dict):
            return f"{op}, must be an object"
        if op == "$add":
            for v in value.values():
                if isinstance(v, bool) or not isinstance(v, int | float):
                    return "$add, values must be numbers"
        if op == "$union":
            for v in value.values():
                if not isinstance(v, list):
                    return "$union, values must be lists"
    return None


def apply_profile_update(state: Any, upd: dict) -> None:
    """Apply a validated update to ``state`` (caller holds ``state.profiles_lock``)."""
    did = str(upd["$distinct_id"])
    if "$delete" in upd:
        state.delete_profile(did)
        return
    props = state.mutable_profile(did)
    for op in PROFILE_OPS:
        if op not in upd:
            continue
        value = upd[op]
        if op == "$set":
            props.update(value)
        elif op == "$set_once":
            for k, v in value.items():
                props.setdefault(k, v)
        elif op == "$add":
            for k, v in value.items():
                cur = props.get(k, 0)
                if isinstance(cur, bool) or not isinstance(cur, int | float):
                    cur = 0
                props[k] = cur + v
        elif op == "$union":
            for k, items in value.items():
                cur = props.get(k)
                lst = list(cur) if isinstance(cur, list) else []
                for item in items:
                    if item not in lst:
                        lst.append(item)
                props[k] = lst
        elif op == "$append":
            for k, item in value.items():
                cur = props.get(k)
                props[k] = [*cur, item] if isinstance(cur, list) else [item]
        elif op == "$remove":
            for k, item in value.items():
                cur = props.get(k)
                if isinstance(cur, list):
                    props[k] = [x for x in cur if x != item]
        elif op == "$unset":
            for k in value:
                props.pop(k, None)
