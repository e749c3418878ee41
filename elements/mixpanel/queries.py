"""The Query API (reference part 2, §1): segmentation and its numeric, sum and average variants,
event counts and properties, funnels, retention and frequency, a saved Insights report, a
profile's activity stream and revenue.

Each operation keeps Mixpanel's parameter names and answers Mixpanel's body unchanged (the
funnel list, a collection, is a JSON array paged as in contract §3). Everything that can be
checked here is, before any vendor call: dates (real days, ``from_date`` not after
``to_date``), units, limits, ``event`` lists and the syntax of ``where``/``on`` expressions, each
a 400 naming the parameter; so is a service-account instance without ``project_id`` (``QUERY``
in needs.py). A Query API 429 (60 queries an hour, 5 at once per project) comes
back as 429 with ``Retry-After`` (``elements/framework/retry.py``).
"""

from __future__ import annotations

import json
import re
from datetime import date

from elements.framework.definition import Call, Operation, Result
from elements.framework.record_ids import with_id
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.needs import QUERY
from elements.mixpanel.vendor import project_query
from platform_core.exceptions import ValidationFailed
from platform_core.pagination import NEXT_PAGE_HEADER, decode_cursor, encode_cursor

QUERY_API = "/api/query"
MAX_LIMIT = 10_000
MAX_EXPRESSION = 2000
FUNNELS_PAGE_SIZE = 200
FUNNEL_PATH = "/funnels"
REVENUE_PATH = "/engage/revenue"
REVENUE_HOST_PATH = "/api/2.0"  # only the legacy prefix is known to serve revenue


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


# --- checks before the vendor call ----------------------------------------------------------


def _day(inputs: dict, name: str) -> date | None:
    raw = inputs.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, f"{raw!r} is not a day (YYYY-MM-DD)") from None


def check_dates(inputs: dict) -> None:
    from_date, to_date = _day(inputs, "from_date"), _day(inputs, "to_date")
    if from_date and to_date and from_date > to_date:
        raise _invalid("from_date", "must not be after to_date")


# Mixpanel's expression language, token by token (reference part 2, §1.0 "Expressions"):
# strings, numbers, names (properties, user, functions, and/or/not/in), operators, brackets.
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
      | (?P<op>==|!=|<=|>=|[<>+\-*/%,])
      | (?P<open>[(\[])
      | (?P<close>[)\]])
    )""",
    re.VERBOSE,
)
_PAIRS = {")": "(", "]": "["}


def check_expression(inputs: dict, name: str) -> None:
    """A ``where``/``on`` expression made of the language's tokens, brackets balanced."""
    text = inputs.get(name)
    if text is None:
        return
    if not text.strip():
        raise _invalid(name, "must not be empty")
    stack: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if not text[position:].strip():
                break
            at = len(text) - len(text[position:].lstrip())
            raise _invalid(name, f"unexpected {text[at]!r} at position {at + 1}")
        if match.group("open"):
            stack.append(match.group("open"))
        elif match.group("close") and (not stack or stack.pop() != _PAIRS[match.group("close")]):
            raise _invalid(name, f"unbalanced {match.group('close')!r}")
        position = match.end()
    if stack:
        raise _invalid(name, f"unclosed {stack[-1]!r}")


def _event_list(inputs: dict) -> str:
    """``event`` as Mixpanel wants it: a JSON array of event names."""
    raw = inputs["event"]
    try:
        names = json.loads(raw)
    except ValueError:
        names = None
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n and len(n) <= 255 for n in names)
    ):
        raise _invalid("event", 'must be a JSON array of event names, e.g. ["Login"]')
    return json.dumps(names)


def _checked(inputs: dict) -> None:
    check_dates(inputs)
    for name in ("where", "on", "born_where"):
        check_expression(inputs, name)


# --- the vendor call ------------------------------------------------------------------------


def ask(call: Call, path: str, params: dict, *, host_path: str = QUERY_API) -> Result:
    """One Query API GET; the answer's JSON body unchanged."""
    query = {k: v for k, v in params.items() if v is not None}
    for key, value in query.items():
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
    response = call.vendor.request(
        "GET", "app", f"{host_path}{path}", query={**query, **project_query(call.configuration)}
    )
    return Result(response.json(), vendor_status=response.status)


def _passing(*names: str):
    """The inputs ``names``, unchanged, as Mixpanel's parameters of the same names."""

    def pick(inputs: dict) -> dict:
        return {name: inputs.get(name) for name in names}

    return pick


def _handler(path: str, pick, *, prepare=None, host_path: str = QUERY_API):
    """An operation's handler: the checks, Mixpanel's parameters (``pick``, then ``prepare``
    with its own checks), one GET of ``path``."""

    def handler(call: Call) -> Result:
        _checked(call.inputs)
        params = pick(call.inputs)
        if prepare is not None:
            params = prepare(call.inputs, params)
        return ask(call, path, params, host_path=host_path)

    return handler


def _event_counts(inputs: dict, params: dict) -> dict:
    if not (inputs.get("from_date") and inputs.get("to_date")) and not inputs.get("interval"):
        raise _invalid("from_date", "from_date and to_date (or interval) are required")
    if inputs.get("interval") and (inputs.get("from_date") or inputs.get("to_date")):
        raise _invalid("interval", "give either interval or from_date and to_date")
    return {**params, "event": _event_list(inputs)}


def _retention(inputs: dict, params: dict) -> dict:
    if inputs.get("retention_type", "birth") == "birth" and not inputs.get("born_event"):
        raise _invalid("born_event", "is required for birth (first-time) retention")
    return params


def _with_limit_needs_on(inputs: dict, params: dict) -> dict:
    if inputs.get("limit") is not None and not inputs.get("on"):
        raise _invalid("limit", "applies only with on")
    return params


def _segmentation(inputs: dict, params: dict) -> dict:
    if inputs.get("interval") is not None and inputs.get("unit") is not None:
        raise _invalid("interval", "give either unit or interval")
    return _with_limit_needs_on(inputs, params)


def _activity_stream(inputs: dict, params: dict) -> dict:
    return {
        "distinct_ids": json.dumps([inputs["id"]]),
        "from_date": inputs["from_date"],
        "to_date": inputs["to_date"],
    }


def saved_funnels(call: Call) -> tuple[list[dict], int]:
    """The saved funnels, ``[{"funnel_id", "name"}]`` by ``funnel_id``, and the vendor's
    status (the funnel list and the ``funnels`` bulk object)."""
    result = ask(call, "/funnels/list", {})
    funnels = result.body
    if not isinstance(funnels, list) or not all(
        isinstance(f, dict) and isinstance(f.get("funnel_id"), int) for f in funnels
    ):
        raise VendorGarbage(
            "Mixpanel's funnel list was not a list of funnels.",
            provider_status=result.vendor_status,
        )
    return sorted(funnels, key=lambda f: f["funnel_id"]), result.vendor_status


def funnel_by_day(call: Call, funnel_id: int, from_date: date, to_date: date) -> Result:
    """One saved funnel's conversion per day of entry, ``{"meta", "data": {day: ...}}``."""
    params = {
        "funnel_id": funnel_id,
        "from_date": from_date.isoformat(),
        "to_date": to_date.isoformat(),
        "unit": "day",
    }
    return ask(call, FUNNEL_PATH, params)


def revenue_by_day(call: Call, from_date: date, to_date: date) -> Result:
    """Revenue per day and ``$overall``, ``{"results": {day: {"amount", "count", ...}}}``."""
    params = {"from_date": from_date.isoformat(), "to_date": to_date.isoformat(), "unit": "day"}
    return ask(call, REVENUE_PATH, params, host_path=REVENUE_HOST_PATH)


def list_funnels(call: Call) -> Result:
    """The saved funnels, ``[{"funnel_id", "name"}]``, paged by ``funnel_id``."""
    size = call.inputs.get("pageSize", FUNNELS_PAGE_SIZE)
    after = decode_cursor(call.inputs["nextPage"]) if call.inputs.get("nextPage") else None
    funnels, status = saved_funnels(call)
    if after is not None:
        funnels = [f for f in funnels if f["funnel_id"] > after]
    page = [with_id(f, f["funnel_id"]) for f in funnels[:size]]
    headers = {}
    if len(funnels) > size:
        headers[NEXT_PAGE_HEADER] = encode_cursor(page[-1]["funnel_id"])
    return Result(page, headers=headers, vendor_status=status)


# --- schemas --------------------------------------------------------------------------------


def _day_schema(description: str) -> dict:
    return {
        "type": "string",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        "maxLength": 10,
        "description": description,
    }


FROM_DATE = _day_schema("First day, YYYY-MM-DD (inclusive).")
TO_DATE = _day_schema("Last day, YYYY-MM-DD (inclusive).")
EVENT = {"type": "string", "minLength": 1, "maxLength": 255, "description": "An event name."}
EXPRESSION = {"type": "string", "maxLength": MAX_EXPRESSION}
WHERE = {**EXPRESSION, "description": 'A filter, e.g. properties["$city"] == "Dallas".'}
ON = {**EXPRESSION, "description": 'The property to segment by, e.g. properties["$city"].'}
TYPE = {
    "type": "string",
    "enum": ["general", "unique", "average"],
    "description": "general (all events, default), unique (users) or average (per user).",
}
INTERVAL = {"type": "integer", "minimum": 1, "maximum": 90, "description": "Days a bucket."}


def _unit(*units: str, default: str | None = "day") -> dict:
    described = f"One of {', '.join(units)}" + (f" (default {default})." if default else ".")
    return {"type": "string", "enum": list(units), "description": described}


def _limit(default: int, maximum: int = MAX_LIMIT) -> dict:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": maximum,
        "description": f"At most this many (default {default}).",
    }


def _inputs(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_DATES = {"from_date": FROM_DATE, "to_date": TO_DATE}
_SEGMENTATION_VALUES = {
    "type": "object",
    "properties": {
        "data": {
            "type": "object",
            "properties": {"series": {"type": "array"}, "values": {"type": "object"}},
            "required": ["series", "values"],
        },
        "legend_size": {"type": "integer"},
    },
    "required": ["data"],
}
_RESULTS_BY_DATE = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "results": {"type": "object"}},
    "required": ["results"],
}
_NUMERIC_ON = {
    "event": EVENT,
    **_DATES,
    "on": {**ON, "description": 'The numeric property, e.g. properties["amount"].'},
    "unit": _unit("hour", "day"),
    "where": WHERE,
}


def _query_operation(
    *,
    id: str,
    name: str,
    path: str,
    vendor_path: str,
    description: str,
    inputs: dict,
    output: dict,
    handler,
    object_name: str | None = None,
) -> Operation:
    return Operation(
        id=id,
        name=name,
        method="GET",
        path=path,
        object_name=object_name,
        handler=handler,
        description=description,
        vendor_method="GET",
        vendor_path=vendor_path,
        input_schema=inputs,
        output_schema=output,
        idempotent=True,
        requires_configuration=QUERY,
    )


_SEGMENTATION_INPUTS = {
    "event": EVENT,
    **_DATES,
    "on": ON,
    "unit": _unit("minute", "hour", "day", "month"),
    "interval": INTERVAL,
    "where": WHERE,
    "limit": _limit(60),
    "type": TYPE,
}

OPERATIONS: tuple[Operation, ...] = (
    _query_operation(
        id="getSegmentation",
        name="segmentation",
        path="/segmentation",
        vendor_path="/api/query/segmentation",
        description="Counts of one event over time, optionally segmented by a property (on).",
        inputs=_inputs(_SEGMENTATION_INPUTS, ("event", "from_date", "to_date")),
        output=_SEGMENTATION_VALUES,
        handler=_handler("/segmentation", _passing(*_SEGMENTATION_INPUTS), prepare=_segmentation),
    ),
    _query_operation(
        id="getSegmentationNumeric",
        name="segmentation_numeric",
        path="/segmentation/numeric",
        vendor_path="/api/query/segmentation/numeric",
        description="Counts of one event bucketed by a numeric property (on).",
        inputs=_inputs({**_NUMERIC_ON, "type": TYPE}, ("event", "from_date", "to_date", "on")),
        output=_SEGMENTATION_VALUES,
        handler=_handler("/segmentation/numeric", _passing(*_NUMERIC_ON, "type")),
    ),
    _query_operation(
        id="getSegmentationSum",
        name="segmentation_sum",
        path="/segmentation/sum",
        vendor_path="/api/query/segmentation/sum",
        description="The sum of a numeric property (on) of one event, per hour or day.",
        inputs=_inputs(_NUMERIC_ON, ("event", "from_date", "to_date", "on")),
        output=_RESULTS_BY_DATE,
        handler=_handler("/segmentation/sum", _passing(*_NUMERIC_ON)),
    ),
    _query_operation(
        id="getSegmentationAverage",
        name="segmentation_average",
        path="/segmentation/average",
        vendor_path="/api/query/segmentation/average",
        description="The average of a numeric property (on) of one event, per hour or day.",
        inputs=_inputs(_NUMERIC_ON, ("event", "from_date", "to_date", "on")),
        output=_RESULTS_BY_DATE,
        handler=_handler("/segmentation/average", _passing(*_NUMERIC_ON)),
    ),
    _query_operation(
        id="getActivityCounts",
        name="event_counts",
        path="/activities/count",
        vendor_path="/api/query/events",
        object_name="activities",
        description=(
            'Counts of several events over time: event as a JSON array (["Login","Purchase"]), '
            "type, unit; from_date and to_date, or interval (the last N days)."
        ),
        inputs=_inputs(
            {
                "event": {
                    "type": "string",
                    "minLength": 2,
                    "maxLength": 4000,
                    "description": 'A JSON array of event names, e.g. ["Login","Purchase"].',
                },
                "type": {**TYPE, "default": "general"},
                "unit": {**_unit("minute", "hour", "day", "week", "month"), "default": "day"},
                "interval": {**INTERVAL, "description": "The last N days (in place of dates)."},
                **_DATES,
            },
            ("event",),
        ),
        output=_SEGMENTATION_VALUES,
        handler=_handler(
            "/events",
            lambda inputs: {
                "event": inputs.get("event"),
                "type": inputs.get("type", "general"),
                "unit": inputs.get("unit", "day"),
                "interval": inputs.get("interval"),
                "from_date": inputs.get("from_date"),
                "to_date": inputs.get("to_date"),
            },
            prepare=_event_counts,
        ),
    ),
    _query_operation(
        id="getActivityPropertiesTop",
        name="event_properties_top",
        path="/activities/properties/top",
        vendor_path="/api/query/events/properties/top",
        object_name="activities",
        description='An event\'s top properties: {"<property>": {"count": n}}.',
        inputs=_inputs({"event": EVENT, "limit": _limit(10)}, ("event",)),
        output={"type": "object", "additionalProperties": {"type": "object"}},
        handler=_handler("/events/properties/top", _passing("event", "limit")),
    ),
    _query_operation(
        id="getActivityPropertyValues",
        name="event_property_values",
        path="/activities/properties/values",
        vendor_path="/api/query/events/properties/values",
        object_name="activities",
        description="The top values of one property (name) of an event: a JSON array.",
        inputs=_inputs(
            {
                "event": EVENT,
                "name": {"type": "string", "minLength": 1, "maxLength": 255},
                "limit": _limit(255),
            },
            ("event", "name"),
        ),
        output={"type": "array"},
        handler=_handler("/events/properties/values", _passing("event", "name", "limit")),
    ),
    Operation(
        id="getFunnels",
        name="funnels_list",
        method="GET",
        path="/funnels",
        handler=list_funnels,
        description='The saved funnels, [{"funnel_id", "name"}], paged (pageSize, nextPage).',
        vendor_method="GET",
        vendor_path="/api/query/funnels/list",
        input_schema=_inputs(
            {
                "pageSize": {"type": "integer", "minimum": 1, "maximum": 1000},
                "nextPage": {"type": "string", "maxLength": 200},
            }
        ),
        output_schema={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "description": "The funnel_id."},
                    "funnel_id": {"type": "integer"},
                    "name": {"type": "string"},
                },
                "required": ["id", "funnel_id", "name"],
            },
        },
        idempotent=True,
        requires_configuration=QUERY,
    ),
    _query_operation(
        id="getFunnel",
        name="funnel_query",
        path="/funnels/{funnelId}",
        vendor_path="/api/query/funnels",
        description="One saved funnel's conversion, per day (or week, month) of entry.",
        inputs=_inputs(
            {
                "funnelId": {"type": "integer", "minimum": 1, "x-in": "path"},
                **_DATES,
                "length": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 90,
                    "description": "The conversion window (default: the funnel's own).",
                },
                "length_unit": _unit("day", "hour", "minute", "second"),
                "interval": INTERVAL,
                "unit": _unit("day", "week", "month"),
                "on": ON,
                "where": WHERE,
                "limit": _limit(255),
            },
            ("funnelId", "from_date", "to_date"),
        ),
        output={
            "type": "object",
            "properties": {"meta": {"type": "object"}, "data": {"type": "object"}},
            "required": ["data"],
        },
        handler=_handler(
            FUNNEL_PATH,
            lambda inputs: {
                "funnel_id": inputs["funnelId"],
                **{
                    k: inputs.get(k)
                    for k in (
                        "from_date",
                        "to_date",
                        "length",
                        "length_unit",
                        "interval",
                        "unit",
                        "on",
                        "where",
                        "limit",
                    )
                },
            },
            prepare=_with_limit_needs_on,
        ),
    ),
    _query_operation(
        id="getRetention",
        name="retention",
        path="/retention",
        vendor_path="/api/query/retention",
        description=(
            'Retention cohorts: {"<date>": {"counts": [...], "first": n}}; retention_type birth '
            "(needs born_event) or compounded."
        ),
        inputs=_inputs(
            {
                **_DATES,
                "retention_type": {"type": "string", "enum": ["birth", "compounded"]},
                "born_event": EVENT,
                "event": EVENT,
                "born_where": WHERE,
                "where": WHERE,
                "interval": INTERVAL,
                "interval_count": {"type": "integer", "minimum": 1, "maximum": 100},
                "unit": _unit("day", "week", "month"),
                "unbounded_retention": {"type": "boolean"},
                "on": ON,
                "limit": _limit(255),
            },
            ("from_date", "to_date"),
        ),
        output={"type": "object", "additionalProperties": {"type": "object"}},
        handler=_handler(
            "/retention",
            _passing(
                "from_date",
                "to_date",
                "retention_type",
                "born_event",
                "event",
                "born_where",
                "where",
                "interval",
                "interval_count",
                "unit",
                "unbounded_retention",
                "on",
                "limit",
            ),
            prepare=lambda inputs, params: _with_limit_needs_on(inputs, _retention(inputs, params)),
        ),
    ),
    _query_operation(
        id="getRetentionFrequency",
        name="retention_frequency",
        path="/retention/frequency",
        vendor_path="/api/query/retention/addiction",
        description=(
            "How often users come back: per period (unit), how many were active in at least "
            "1, 2, ... hours or days (addiction_unit)."
        ),
        inputs=_inputs(
            {
                **_DATES,
                "unit": _unit("day", "week", "month", default=None),
                "addiction_unit": _unit("hour", "day", default=None),
                "event": EVENT,
                "where": WHERE,
                "on": ON,
                "limit": _limit(255),
            },
            ("from_date", "to_date", "unit", "addiction_unit"),
        ),
        output={
            "type": "object",
            "properties": {"data": {"type": "object"}},
            "required": ["data"],
        },
        handler=_handler(
            "/retention/addiction",
            _passing("from_date", "to_date", "unit", "addiction_unit", "event", "where", "on"),
            prepare=lambda inputs, params: {
                **_with_limit_needs_on(inputs, params),
                "limit": inputs.get("limit"),
            },
        ),
    ),
    _query_operation(
        id="getInsight",
        name="insights",
        path="/insights/{bookmarkId}",
        vendor_path="/api/query/insights",
        description="A saved Insights report, by its bookmark id (report-<id> in its URL).",
        inputs=_inputs(
            {"bookmarkId": {"type": "integer", "minimum": 1, "x-in": "path"}}, ("bookmarkId",)
        ),
        output={
            "type": "object",
            "properties": {"series": {"type": "object"}, "headers": {"type": "array"}},
            "required": ["series"],
        },
        handler=_handler("/insights", lambda inputs: {"bookmark_id": inputs["bookmarkId"]}),
    ),
    _query_operation(
        id="getUserActivities",
        name="profile_activity_stream",
        path="/users/{id}/activities",
        vendor_path="/api/query/stream/query",
        object_name="users",
        description="The profile's activity stream: its events between from_date and to_date.",
        inputs=_inputs(
            {
                "id": {"type": "string", "minLength": 1, "maxLength": 255, "x-in": "path"},
                **_DATES,
            },
            ("id", "from_date", "to_date"),
        ),
        output={
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "results": {
                    "type": "object",
                    "properties": {"events": {"type": "array"}},
                    "required": ["events"],
                },
            },
            "required": ["results"],
        },
        handler=_handler("/stream/query", _passing(), prepare=_activity_stream),
    ),
    _query_operation(
        id="getRevenue",
        name="revenue",
        path="/revenue",
        vendor_path="/api/2.0/engage/revenue",
        description=(
            'Revenue per day (or week, month) and "$overall": {"amount", "count", '
            '"paid_count"}, from the profiles\' $transactions.'
        ),
        inputs=_inputs({**_DATES, "unit": _unit("day", "week", "month")}, ("from_date", "to_date")),
        output=_RESULTS_BY_DATE,
        handler=_handler(
            REVENUE_PATH,
            _passing("from_date", "to_date", "unit"),
            host_path=REVENUE_HOST_PATH,
        ),
    ),
)
