"""Events: tracking (reference §6), import of any size (§5) and top events.

Import splits the caller's events into Mixpanel-sized requests (at most 2000 events and
``IMPORT_MAX_BYTES`` each), sends them with bounded concurrency, and maps each request's
``failed_records`` back to the caller's positions. Retries are safe because Mixpanel
deduplicates on ``$insert_id``; a request whose events lack one is never retried.
"""

import functools
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from elements.framework.ceql import CeqlError, Comparison, parse_where
from elements.framework.definition import Call, Operation, Result
from elements.framework.vendor import VendorError, raise_for_status
from elements.mixpanel.needs import QUERY, TRACKING
from elements.mixpanel.schemas import EVENT, IMPORT_OUTPUT, TRACK_OUTPUT
from elements.mixpanel.secret_tracking import track_by_import
from elements.mixpanel.vendor import project_query
from platform_core.exceptions import ValidationFailed

IMPORT_MAX_EVENTS = 2000
IMPORT_MAX_BYTES = 10 * 1024 * 1024  # uncompressed, per request (reference §5)
IMPORT_CONCURRENCY = 4


# --- import ---------------------------------------------------------------------------------
#
# An import body is mostly events the platform only forwards. When it needs nothing merged into
# them (no "properties"), the events stay the caller's own bytes: msgspec checks the whole body
# is valid JSON and cuts it into one ``msgspec.Raw`` slice per event without building the
# events, and each vendor request is those slices joined (no decode, no re-encode). Anything
# this path is unsure of goes the general way (orjson, the input schema), which gives the same
# answer or the contract's error.


# Structs without garbage-collector tracking: tens of thousands are made per call, none can
# form a cycle, and tracked ones made the collector run several times over a 20,000-event body.


class _ImportBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: list[msgspec.Raw]
    strict: str | bool = "1"


_IMPORT_BODY = msgspec.json.Decoder(_ImportBody)
_EVENT_LIST = msgspec.json.Decoder(list[msgspec.Raw])
# A \uD800-\uDFFF escape: a surrogate, which the general path rejects when it is alone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# In the events' slices joined by NUL: a slice that does not begin with "{".
_NOT_AN_OBJECT = re.compile(rb"\x00[^{]")


def _all_objects(events: list[msgspec.Raw]) -> bool:
    """Whether every event is a JSON object, without building one. Each slice is one whole
    JSON value (msgspec checked the body) beginning at its first byte, so it is an object
    exactly when that byte is "{". Joined by NUL, which valid JSON never holds (control
    characters are escaped in strings, and only whitespace may stand between tokens), the
    check is one regular-expression scan in C rather than a Python loop over the events."""
    joined = b"\x00".join(events)
    return joined[:1] == b"{" and _NOT_AN_OBJECT.search(joined) is None


def _raw_import_inputs(raw: bytes, *, array_body: bool) -> dict | None:
    """``{"events": [Raw, ...], "strict": ...}`` when the body is plainly valid for an import
    that merges nothing, else None (the general path decides). One msgspec pass over the body:
    it checks the JSON and cuts out the events."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")  # msgspec skips over values; the general path rejects bad UTF-8
        except UnicodeDecodeError:
            return None
    # Looking for the one byte "\\" is memchr-fast; looking for "\\u" is not (2 ms in 2.6 MB).
    if b"\\" in raw and _SURROGATE_ESCAPE.search(raw):
        return None
    try:
        if array_body and raw.lstrip()[:1] == b"[":
            inputs = {"events": _EVENT_LIST.decode(raw)}
        else:
            body = _IMPORT_BODY.decode(raw)
            inputs = {"events": body.events, "strict": body.strict}
    except (msgspec.DecodeError, RecursionError):  # malformed, a wrong type or key, too deep
        return None
    if not inputs["events"] or inputs.get("strict", "1") not in ("0", "1", True, False):
        return None
    if not _all_objects(inputs["events"]):
        return None
    return inputs


class _InsertIdProbe(msgspec.Struct, gc=False):
    insert_id: Any = msgspec.field(default=msgspec.UNSET, name="$insert_id")


class _EventProbe(msgspec.Struct, gc=False):
    properties: _InsertIdProbe | None = None


# Reads only each event's properties.$insert_id; every other value is skipped, not built.
_INSERT_ID_PROBE = msgspec.json.Decoder(list[_EventProbe])


def _all_have_insert_ids(events: list, body: bytes) -> bool:
    """Whether every event of a request carries properties.$insert_id (a request may then be
    retried: Mixpanel deduplicates on it). ``body`` is the request's JSON."""
    if events and isinstance(events[0], msgspec.Raw):
        try:
            probed = _INSERT_ID_PROBE.decode(body)
        except msgspec.ValidationError:  # an event's properties is not an object
            return False
        return all(
            e.properties is not None and e.properties.insert_id is not msgspec.UNSET for e in probed
        )
    return all(
        isinstance(e.get("properties"), dict) and "$insert_id" in e["properties"] for e in events
    )


@dataclass
class Batch:
    offset: int  # position of the first event in the caller's list
    events: list  # dicts, or the caller's own bytes of each event (msgspec.Raw)

    def split(self) -> tuple["Batch", "Batch"]:
        half = len(self.events) // 2
        return Batch(self.offset, self.events[:half]), Batch(self.offset + half, self.events[half:])

    def body(self) -> bytes:
        """The request body: the events' own bytes joined, or one dumps of the list."""
        if self.events and isinstance(self.events[0], msgspec.Raw):
            return b"[" + b",".join(self.events) + b"]"
        return orjson.dumps(self.events)


@dataclass
class ImportTally:
    imported: int = 0
    failed: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # VendorErrors of batches that never got in

    def merge(self, other: "ImportTally") -> "ImportTally":
        self.imported += other.imported
        self.failed += other.failed
        self.errors += other.errors
        return self


def _with_common(events: list[dict], common: dict) -> list[dict]:
    """``common`` merged into every event's properties; the event's own values win."""
    if not common:
        return events
    return [{**e, "properties": {**common, **(e.get("properties") or {})}} for e in events]


def _send(call: Call, batch: Batch, strict: str) -> ImportTally:
    """One vendor request for ``batch`` (split further while it is over the byte limit); what
    got in and what did not, in the caller's positions."""
    body = batch.body()
    if len(body) > IMPORT_MAX_BYTES and len(batch.events) > 1:
        first, second = batch.split()
        return _send(call, first, strict).merge(_send(call, second, strict))
    tally = ImportTally()
    has_insert_ids = _all_have_insert_ids(batch.events, body)
    try:
        response = call.vendor.request(
            "POST",
            "api",
            "/import",
            query={"strict": strict, **project_query(call.configuration)},
            body=body,
            content_type="application/json",
            # Mixpanel deduplicates on $insert_id: a batch without them must not be sent twice.
            idempotent=has_insert_ids,
            check=False,
        )
    except VendorError as exc:  # no answer (timeout, the deadline, unreachable, breaker open)
        return _not_imported(tally, batch, exc)
    if response.status == 413 and len(batch.events) > 1:
        # The vendor's byte limit is lower than ours: halve and try again.
        first, second = batch.split()
        return _send(call, first, strict).merge(_send(call, second, strict))
    body = response.json() if response.status in (200, 400) else None
    if response.status == 400 and isinstance(body, dict) and "failed_records" in body:
        tally.imported += int(body.get("num_records_imported") or 0)
        for record in body["failed_records"] or []:
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                record = {**record, "index": record["index"] + batch.offset}
            tally.failed.append(record)
        return tally
    try:
        raise_for_status(response)
    except VendorError as exc:
        return _not_imported(tally, batch, exc)
    tally.imported += int((body or {}).get("num_records_imported") or len(batch.events))
    return tally


def _not_imported(tally: ImportTally, batch: Batch, exc: VendorError) -> ImportTally:
    tally.errors.append(exc)
    message = f"not imported: {exc.message} {exc.provider_message or ''}".strip()
    for i in range(len(batch.events)):
        tally.failed.append({"index": batch.offset + i, "field": None, "message": message})
    return tally


def import_events(call: Call) -> Result:
    events = _with_common(call.inputs["events"], call.inputs.get("properties") or {})
    strict = _strict_flag(call.inputs.get("strict", "1"))
    batches = [
        Batch(start, events[start : start + IMPORT_MAX_EVENTS])
        for start in range(0, len(events), IMPORT_MAX_EVENTS)
    ]
    tally = ImportTally()
    if len(batches) == 1:
        tally = _send(call, batches[0], strict)
    else:
        # Each batch returns its own tally (no state shared across threads); summed after.
        with ThreadPoolExecutor(max_workers=IMPORT_CONCURRENCY) as pool:
            for part in pool.map(lambda batch: _send(call, batch, strict), batches):
                tally.merge(part)
    if tally.errors and tally.imported == 0 and len(tally.errors) == len(batches):
        raise tally.errors[0]  # nothing got in anywhere: the vendor's own error is clearer
    tally.failed.sort(key=lambda r: r.get("index", -1) if isinstance(r, dict) else -1)
    if not tally.failed:
        status = "OK"
    elif tally.imported:
        status = "PARTIAL"
    else:
        status = "FAILED"
    return Result(
        {"status": status, "num_records_imported": tally.imported, "failed_records": tally.failed}
    )


def _strict_flag(value) -> str:
    if value in (True, "1", 1, "true"):
        return "1"
    if value in (False, "0", 0, "false"):
        return "0"
    raise ValidationFailed(errors=[{"field": "strict", "message": "must be '0' or '1'"}])


# --- track ----------------------------------------------------------------------------------


def _track(call: Call, event: dict, query: dict) -> tuple[dict, int]:
    token = call.configuration.get("project_token")
    properties = dict(event.get("properties") or {})
    properties.setdefault("time", int(time.time()))
    # A $insert_id makes the event deduplicated by Mixpanel, so a retry cannot double it.
    properties.setdefault("$insert_id", secrets.token_hex(16))
    if not token:  # the API secret alone (seed 002), or a service account: /import takes them
        return track_by_import(call, event["event"], properties, query)
    payload = {"event": event["event"], "properties": {**properties, "token": token}}
    response = call.vendor.request(
        "POST",
        "api",
        "/track",
        query={"verbose": 1, **query},
        json_body=[payload],
        authenticate=False,  # the project token in the event authenticates it
    )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") not in (0, 1):
        raise VendorError(
            "Mixpanel's track answer was not understood.",
            provider_status=response.status,
            provider_message=response.text()[:500],
        )
    return {"event": event["event"], "properties": properties, **body}, response.status


def track_activity(call: Call) -> Result:
    tracked, status = _track(call, call.inputs, {})
    if tracked["status"] != 1:
        raise VendorError(
            "Mixpanel did not accept the event.",
            status_code=400,
            provider_status=status,
            provider_message=str(tracked.get("error")),
        )
    properties = tracked["properties"]
    # The event's primary key, as in bulk activities (contract §9): its $insert_id.
    return Result(
        {
            "id": str(properties["$insert_id"]),
            "event": tracked["event"],
            "properties": properties,
            "status": 1,
        },
        vendor_status=status,
    )


def track_event(call: Call) -> Result:
    query = {k: call.inputs[k] for k in ("strict", "project_id") if k in call.inputs}
    tracked, status = _track(call, call.inputs, query)
    return Result(
        {"status": tracked["status"], "error": tracked.get("error")}, vendor_status=status
    )


# --- top events -----------------------------------------------------------------------------

TOP_TYPES = ("general", "unique", "average")


def _top_type(where: str | None) -> str:
    if not where:
        return "general"
    try:
        expr = parse_where(where)
    except CeqlError as exc:
        raise ValidationFailed(errors=[{"field": "where", "message": str(exc)}]) from None
    if (
        isinstance(expr, Comparison)
        and expr.field == "type"
        and expr.op == "="
        and expr.value in TOP_TYPES
    ):
        return expr.value
    raise ValidationFailed(
        errors=[{"field": "where", "message": "only type='general'|'unique'|'average'"}]
    )


def top_activities(call: Call) -> Result:
    response = call.vendor.request(
        "GET",
        "app",
        "/api/query/events/top",
        query={
            "type": _top_type(call.inputs.get("where")),
            "limit": call.inputs.get("limit"),
            **project_query(call.configuration),
        },
    )
    body = response.json()
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise VendorError("Mixpanel's top events had no events.", provider_status=response.status)
    return Result(events, vendor_status=response.status)


# --- definitions ----------------------------------------------------------------------------

_STRICT = {
    "type": ["string", "boolean"],
    "enum": ["0", "1", True, False],
    "description": "'1' (default): Mixpanel validates each event and itemises failures.",
}
_IMPORT_INPUT = {
    "type": "object",
    "properties": {
        "strict": _STRICT,
        "events": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "properties": {"type": "object", "description": "Merged into every event."},
    },
    "required": ["events"],
    "additionalProperties": False,
}

OPERATIONS = (
    Operation(
        id="createActivity",
        method="POST",
        path="/activities",
        object_name="activities",
        handler=track_activity,
        requires_configuration=(TRACKING,),
        description='Track one event ({"event": ..., "properties": {...}}).',
        vendor_method="POST",
        vendor_path="/track (/import without a project_token)",
        input_schema={**EVENT, "additionalProperties": False},
        output_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "The event's $insert_id."},
                **EVENT["properties"],
                "status": {"type": "integer"},
            },
            "required": ["id", "event", "properties", "status"],
        },
        idempotent=True,
    ),
    Operation(
        id="importActivities",
        method="POST",
        path="/activities/import",
        object_name="activities",
        handler=import_events,
        requires_configuration=QUERY,
        description=(
            'Import a batch of events of any size (a JSON array, or {"events": [...]}); '
            "split into Mixpanel-sized requests."
        ),
        vendor_method="POST",
        vendor_path="/import",
        input_schema=_IMPORT_INPUT,
        output_schema=IMPORT_OUTPUT,
        idempotent=True,
        array_body="events",
        raw_inputs=functools.partial(_raw_import_inputs, array_body=True),
    ),
    Operation(
        id="getTopActivities",
        method="GET",
        path="/activities/top",
        object_name="activities",
        handler=top_activities,
        requires_configuration=QUERY,
        description="Top events today; where=type='general' (or 'unique', 'average').",
        vendor_method="GET",
        vendor_path="/api/query/events/top",
        input_schema={
            "type": "object",
            "properties": {
                "where": {"type": "string", "maxLength": 200},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            "additionalProperties": False,
        },
        output_schema={"type": "array", "items": {"type": "object"}},
        idempotent=True,
    ),
    Operation(
        id="import_events",
        name="import_events",
        method="POST",
        object_name="activities",
        handler=import_events,
        requires_configuration=QUERY,
        description="Import events with strict validation; failed_records index the input.",
        vendor_method="POST",
        vendor_path="/import",
        input_schema=_IMPORT_INPUT,
        output_schema=IMPORT_OUTPUT,
        idempotent=True,
        raw_inputs=functools.partial(_raw_import_inputs, array_body=False),
    ),
    Operation(
        id="track_event",
        name="track_event",
        method="POST",
        object_name="activities",
        handler=track_event,
        requires_configuration=(TRACKING,),
        description="Track one event with its properties (time, distinct_id, $insert_id).",
        vendor_method="POST",
        vendor_path="/track (/import without a project_token)",
        input_schema={
            "type": "object",
            "properties": {
                "strict": {"type": "string", "enum": ["0", "1"], "x-in": "query"},
                "project_id": {"type": "string", "maxLength": 64, "x-in": "query"},
                "event": {"type": "string", "minLength": 1, "maxLength": 255},
                "properties": {
                    "type": "object",
                    "properties": {
                        "time": {"type": "number"},
                        "distinct_id": {"type": ["string", "integer"]},
                        "$insert_id": {"type": "string", "maxLength": 36},
                    },
                    "required": ["time", "distinct_id", "$insert_id"],
                },
            },
            "required": ["event", "properties"],
            "additionalProperties": False,
        },
        output_schema=TRACK_OUTPUT,
        idempotent=True,
    ),
)
