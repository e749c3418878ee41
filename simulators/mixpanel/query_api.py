"""The Query API past engage and top events: segmentation, event counts and properties,
funnels, retention and frequency, a saved Insights report, the activity stream and revenue
(reference part 2, §1).

Every answer is computed from the generated events (``datagen.iter_events``, ``events_per_day``
a day) and the seeded funnels and report (``datagen.SAVED_FUNNELS``, ``SAVED_INSIGHTS``);
revenue from the profiles' ``$transactions`` (appended through ``/engage``). Each endpoint
authenticates like the other query endpoints and counts against the query rate limits (60 an
hour, 5 at once per project); errors use the query envelope ``{"request", "error"}``.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import auth, datagen
from .endpoints import (
    ApiError,
    Reply,
    Request,
    _auth,
    _compile_where,
    _int_param,
    _QuerySlot,
    _string_list_param,
    ok_json,
)
from .state import State

SEGMENTATION_UNITS = ("minute", "hour", "day", "month")
EVENT_COUNT_UNITS = ("minute", "hour", "day", "week", "month")
PERIOD_UNITS = ("day", "week", "month")
MAX_QUERY_DAYS = 366  # [I] a longer range is refused, so one query stays cheap to compute
_ON = re.compile(r'^\s*properties\s*\[\s*"([^"]+)"\s*\]\s*$')


def query_endpoint(compute: Callable[[State, dict], Any]) -> Callable[[Any, Request], Reply]:
    """An endpoint: authenticate, check the parameters and take a query slot, answer JSON."""

    def endpoint(ctx, req: Request) -> Reply:
        principal = _auth(ctx, req, auth.QUERY)
        state: State = ctx.state
        slot = _QuerySlot(state, principal.project_id, "query")
        slot.acquire()
        try:
            return ok_json(compute(state, req.params))
        finally:
            slot.release()

    endpoint.__name__ = compute.__name__
    return endpoint


# --- parameters -----------------------------------------------------------------------------


def _required(params: dict, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"'{name}' is a required parameter")
    return value


def _date(params: dict, name: str) -> date:
    raw = _required(params, name)
    try:
        return datagen.parse_date(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' is invalid: {raw!r} is not yyyy-mm-dd") from None


def _date_range(params: dict) -> tuple[date, date]:
    from_date, to_date = _date(params, "from_date"), _date(params, "to_date")
    if from_date > to_date:
        raise ApiError(400, "'from_date' cannot be later than 'to_date'")
    if (to_date - from_date).days >= MAX_QUERY_DAYS:
        raise ApiError(400, f"the date range cannot be longer than {MAX_QUERY_DAYS} days")
    return from_date, to_date


def _choice(params: dict, name: str, choices: tuple[str, ...], default: str | None) -> str:
    value = params.get(name) or default
    if value is None:
        raise ApiError(400, f"'{name}' is a required parameter")
    if value not in choices:
        raise ApiError(400, f"'{name}' must be one of {', '.join(choices)}")
    return value


def _limit(params: dict, default: int, maximum: int) -> int:
    limit = _int_param(params, "limit", default, 1)
    if limit > maximum:
        raise ApiError(400, f"'limit' must be <= {maximum}")
    return limit


def _on(params: dict, *, required: bool = False) -> str | None:
    raw = params.get("on")
    if not raw:
        if required:
            raise ApiError(400, "'on' is a required parameter")
        return None
    match = _ON.match(raw)
    if match is None:
        raise ApiError(400, f"invalid on expression: {raw!r} (the simulator takes properties[...])")
    return match.group(1)


def _events(state: State, from_date: date, to_date: date, where: str | None) -> Iterator[dict]:
    predicate = _compile_where(where)
    for event in datagen.iter_events(from_date, to_date, state.settings["events_per_day"]):
        if predicate is None or predicate(event["properties"], event["event"]):
            yield event


# --- time buckets ---------------------------------------------------------------------------


def _period_start(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _next_period(day: date, unit: str, count: int = 1) -> date:
    if unit == "week":
        return day + timedelta(weeks=count)
    if unit == "month":
        months = day.month - 1 + count
        return date(day.year + months // 12, months % 12 + 1, 1)
    return day + timedelta(days=count)


def _label(ts: int, unit: str) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    if unit == "minute":
        return moment.strftime("%Y-%m-%d %H:%M:00")
    if unit == "hour":
        return moment.strftime("%Y-%m-%d %H:00:00")
    return _period_start(moment.date(), unit).isoformat()


def _series(from_date: date, to_date: date, unit: str) -> list[str]:
    if unit in ("minute", "hour"):
        step = 60 if unit == "minute" else 3600
        start = calendar.timegm(from_date.timetuple())
        end = calendar.timegm((to_date + timedelta(days=1)).timetuple())
        return [_label(ts, unit) for ts in range(start, end, step)]
    labels, day = [], _period_start(from_date, unit)
    while day <= to_date:
        labels.append(day.isoformat())
        day = _next_period(day, unit)
    return labels


def _interval_label(day: date, from_date: date, interval: int) -> str:
    """``interval`` days a bucket, counted from ``from_date``."""
    return (from_date + timedelta(days=(day - from_date).days // interval * interval)).isoformat()


def _bucketing(params: dict, from_date: date, to_date: date, units: tuple[str, ...]):
    """(series, event -> label) from ``unit`` or ``interval`` (days a bucket)."""
    interval = _int_param(params, "interval", None, 1)
    if interval is not None and not params.get("unit"):
        days = datagen.iter_dates(from_date, to_date)
        labels = sorted({_interval_label(d, from_date, interval) for d in days})
        return labels, lambda ev: _interval_label(
            datetime.fromtimestamp(ev["properties"]["time"], UTC).date(), from_date, interval
        )
    unit = _choice(params, "unit", units, "day")
    return _series(from_date, to_date, unit), lambda ev: _label(ev["properties"]["time"], unit)


def _counted(groups: dict, kind: str) -> dict:
    """{key: {label: count}} from {key: {label: [distinct_id, ...]}} as ``type`` says."""
    out: dict = {}
    for key, by_label in groups.items():
        out[key] = {}
        for label, users in by_label.items():
            unique = len(set(users))
            if kind == "unique":
                out[key][label] = unique
            elif kind == "average":
                out[key][label] = round(len(users) / unique, 3) if unique else 0
            else:
                out[key][label] = len(users)
    return out


def _segmented(state, params, events: set[str], key_of, units) -> dict:
    from_date, to_date = _date_range(params)
    kind = _choice(params, "type", ("general", "unique", "average"), "general")
    series, label_of = _bucketing(params, from_date, to_date, units)
    groups: dict = defaultdict(lambda: defaultdict(list))
    for ev in _events(state, from_date, to_date, params.get("where")):
        if ev["event"] in events:
            key = key_of(ev)
            if key is not None:
                groups[key][label_of(ev)].append(ev["properties"]["distinct_id"])
    values = _counted(groups, kind)
    for by_label in values.values():
        for label in series:
            by_label.setdefault(label, 0)
    return {"data": {"series": series, "values": values}, "legend_size": len(values)}


def _property_key(name: str | None, event_name: str) -> Callable[[dict], str | None]:
    if name is None:
        return lambda ev: event_name
    return lambda ev: _text(ev["properties"].get(name))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# --- segmentation ---------------------------------------------------------------------------


def segmentation(state: State, params: dict) -> dict:
    event = _required(params, "event")
    name = _on(params)
    limit = _limit(params, 60, 10_000)
    answer = _segmented(state, params, {event}, _property_key(name, event), SEGMENTATION_UNITS)
    if name is not None:  # the ``limit`` top values by total
        values = answer["data"]["values"]
        kept = sorted(values, key=lambda k: (-sum(values[k].values()), k))[:limit]
        answer["data"]["values"] = {k: values[k] for k in kept}
        answer["legend_size"] = len(kept)
    return answer


def _numbers(state: State, params: dict) -> tuple[str, date, date, str, list[tuple[str, float]]]:
    event = _required(params, "event")
    name = _on(params, required=True)
    from_date, to_date = _date_range(params)
    unit = _choice(params, "unit", ("hour", "day"), "day")
    rows = []
    for ev in _events(state, from_date, to_date, params.get("where")):
        if ev["event"] == event:
            value = ev["properties"].get(name)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            number = value if numeric else None
            rows.append((_label(ev["properties"]["time"], unit), number))
    return event, from_date, to_date, unit, rows


def segmentation_numeric(state: State, params: dict) -> dict:
    _choice(params, "type", ("general", "unique", "average"), "general")
    event, from_date, to_date, unit, rows = _numbers(state, params)
    numbers = [n for _, n in rows if n is not None]
    values: dict = {}
    if numbers:
        low, high = min(numbers), max(numbers)
        width = _bucket_width(high - low)
        for label, number in rows:
            if number is None:
                continue
            start = int(number // width * width)
            key = f"{start:,} - {start + width:,}"
            values.setdefault(key, {}).setdefault(label, 0)
            values[key][label] += 1
    series = _series(from_date, to_date, unit)
    for by_label in values.values():
        for label in series:
            by_label.setdefault(label, 0)
    return {"data": {"series": series, "values": values}, "legend_size": len(values)}


def _bucket_width(spread: float) -> int:
    """A round width (1, 2 or 5 times a power of ten) giving at most about ten buckets."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if spread / (factor * magnitude) <= 10:
                return factor * magnitude
        magnitude *= 10


def segmentation_sum(state: State, params: dict) -> dict:
    *_, rows = _numbers(state, params)
    results: dict[str, float] = defaultdict(float)
    for label, number in rows:
        results[label] += number or 0.0  # a non-numeric value counts as 0
    return {
        "status": "ok",
        "computed_at": datetime.now(UTC).isoformat(),
        "results": dict(results),
    }


def segmentation_average(state: State, params: dict) -> dict:
    *_, rows = _numbers(state, params)
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for label, number in rows:
        sums[label] += number or 0.0
        counts[label] += 1
    return {"status": "ok", "results": {k: round(sums[k] / counts[k], 3) for k in sums}}


# --- events ---------------------------------------------------------------------------------


def event_counts(state: State, params: dict) -> dict:
    """``/events``: counts of several events over time, keyed by event name."""
    events = _string_list_param(params, "event")
    if not events:
        raise ApiError(400, "'event' is a required parameter")
    _choice(params, "type", ("general", "unique", "average"), None)
    _choice(params, "unit", EVENT_COUNT_UNITS, None)
    if not params.get("from_date") and params.get("interval"):
        days = _int_param(params, "interval", 1, 1)
        today = datetime.now(UTC).date()
        params = {
            **params,
            "from_date": (today - timedelta(days=days - 1)).isoformat(),
            "to_date": today.isoformat(),
        }
        params.pop("interval")
    return _segmented(state, params, set(events), lambda ev: ev["event"], EVENT_COUNT_UNITS)


def _todays_events(state: State, event: str) -> Iterator[dict]:
    today = datetime.now(UTC).date()
    return (ev for ev in _events(state, today, today, None) if ev["event"] == event)


def property_top(state: State, params: dict) -> dict:
    event = _required(params, "event")
    limit = _limit(params, 10, 10_000)
    counts: dict[str, int] = defaultdict(int)
    for ev in _todays_events(state, event):
        for name in ev["properties"]:
            counts[name] += 1
    top = sorted(counts, key=lambda k: (-counts[k], k))[:limit]
    return {name: {"count": counts[name]} for name in top}


def property_values(state: State, params: dict) -> list[str]:
    event = _required(params, "event")
    name = _required(params, "name")
    limit = _limit(params, 255, 10_000)
    counts: dict[str, int] = defaultdict(int)
    for ev in _todays_events(state, event):
        value = _text(ev["properties"].get(name))
        if value is not None:
            counts[value] += 1
    return sorted(counts, key=lambda k: (-counts[k], k))[:limit]


# --- funnels --------------------------------------------------------------------------------


def funnels_list(state: State, params: dict) -> list[dict]:
    return [{"funnel_id": f["funnel_id"], "name": f["name"]} for f in datagen.SAVED_FUNNELS]


def _saved_funnel(params: dict) -> dict:
    raw = _required(params, "funnel_id")
    funnel = next((f for f in datagen.SAVED_FUNNELS if str(f["funnel_id"]) == raw), None)
    if funnel is None:
        raise ApiError(400, f"funnel_id {raw} does not exist")  # [I] the exact text
    return funnel


def _timelines(events: Iterator[dict], names: set[str]) -> dict[str, list[tuple[int, str]]]:
    by_user: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for ev in events:
        if ev["event"] in names:
            by_user[ev["properties"]["distinct_id"]].append((ev["properties"]["time"], ev["event"]))
    return by_user


def funnel_query(state: State, params: dict) -> dict:
    funnel = _saved_funnel(params)
    from_date, to_date = _date_range(params)
    length = _int_param(params, "length", datagen.FUNNEL_DEFAULT_LENGTH_DAYS, 1)
    if length > 90:
        raise ApiError(400, "'length' must be <= 90")
    length_unit = _choice(params, "length_unit", ("day", "hour", "minute", "second"), "day")
    window = length * {"day": 86400, "hour": 3600, "minute": 60, "second": 1}[length_unit]
    unit = _choice(params, "unit", PERIOD_UNITS, "day")
    _on(params)
    _limit(params, 255, 10_000)
    steps = funnel["steps"]
    # Completions after to_date count: read on for the conversion window.
    read_to = to_date + timedelta(seconds=window)
    timelines = _timelines(_events(state, from_date, read_to, params.get("where")), set(steps))
    dates = _series(from_date, to_date, unit)
    # Per period: for each step, the times (from the previous step, from the start) of those
    # who reached it.
    reached: dict[str, list[list[tuple[int, int]]]] = {d: [[] for _ in steps] for d in dates}
    last = calendar.timegm((to_date + timedelta(days=1)).timetuple())
    for timeline in timelines.values():
        starts = [t for t, name in timeline if name == steps[0] and t < last]
        if not starts:
            continue
        start = starts[0]
        period = _label(start, unit)
        if period not in reached:
            continue
        reached[period][0].append((0, 0))
        previous = start
        position = 0
        for index, step in enumerate(steps[1:], start=1):
            nxt = next(
                (
                    (i, t)
                    for i, (t, name) in enumerate(timeline[position:], start=position)
                    if name == step and previous <= t <= start + window
                ),
                None,
            )
            if nxt is None:
                break
            position, t = nxt[0] + 1, nxt[1]
            reached[period][index].append((t - previous, t - start))
            previous = t
    data = {}
    for period in dates:
        counts = [len(r) for r in reached[period]]
        rows = []
        for index, step in enumerate(steps):
            times = reached[period][index]
            rows.append(
                {
                    "count": counts[index],
                    "avg_time": (
                        round(sum(a for a, _ in times) / len(times)) if index and times else None
                    ),
                    "avg_time_from_start": (
                        round(sum(b for _, b in times) / len(times)) if index and times else None
                    ),
                    "step_conv_ratio": _ratio(counts[index], counts[index - 1] if index else 0),
                    "overall_conv_ratio": _ratio(counts[index], counts[0]),
                    "goal": step,
                    "event": step,
                }
            )
        if counts[0]:
            rows[0]["step_conv_ratio"] = rows[0]["overall_conv_ratio"] = 1
        worst = min(range(1, len(steps)), key=lambda i: (rows[i]["step_conv_ratio"], i))
        data[period] = {
            "steps": rows,
            "analysis": {
                "completion": counts[-1],
                "starting_amount": counts[0],
                "steps": len(steps),
                "worst": worst,
            },
        }
    return {"meta": {"dates": dates}, "data": data}


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0


# --- retention ------------------------------------------------------------------------------


def _day_of(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def retention(state: State, params: dict) -> dict:
    from_date, to_date = _date_range(params)
    kind = _choice(params, "retention_type", ("birth", "compounded"), "birth")
    born_event = params.get("born_event")
    if kind == "birth" and not born_event:
        raise ApiError(400, "'born_event' is a required parameter for birth retention")
    event = params.get("event") or None
    unit = _choice(params, "unit", PERIOD_UNITS, "day")
    interval = _int_param(params, "interval", 1, 1)
    if interval > 90:
        raise ApiError(400, "'interval' must be <= 90")
    count = _int_param(params, "interval_count", 1, 1)
    _on(params)
    _limit(params, 255, 10_000)
    born_where = _compile_where(params.get("born_where"))
    # Return events are read on past to_date for the last cohort's buckets.
    last_period = _next_period(_period_start(to_date, unit), unit, interval * (count + 1))
    born: dict[str, date] = {}  # user -> cohort (period of the first birth event)
    returns: dict[str, set[date]] = defaultdict(set)  # user -> periods with a return event
    cohort_event = born_event if kind == "birth" else (event or born_event)
    for ev in _events(state, from_date, last_period, params.get("where")):
        props, user = ev["properties"], ev["properties"]["distinct_id"]
        period = _period_start(_day_of(props["time"]), unit)
        if (
            _day_of(props["time"]) <= to_date
            and user not in born
            and (cohort_event is None or ev["event"] == cohort_event)
            and (born_where is None or born_where(props, ev["event"]))
        ):
            born[user] = period
        if event is None or ev["event"] == event:
            returns[user].add(period)
    answer: dict[str, dict] = {}
    for user, cohort in born.items():
        entry = answer.setdefault(cohort.isoformat(), {"counts": [0] * (count + 1), "first": 0})
        entry["first"] += 1
        periods = returns.get(user, set())
        for bucket in range(count + 1):
            start = _next_period(cohort, unit, bucket * interval)
            end = _next_period(cohort, unit, (bucket + 1) * interval)
            if any(start <= p < end for p in periods):
                entry["counts"][bucket] += 1
    return dict(sorted(answer.items()))


def retention_frequency(state: State, params: dict) -> dict:
    """``/retention/addiction``: per cohort period, element i = users active in at least i+1
    ``addiction_unit``s of the period."""
    from_date, to_date = _date_range(params)
    unit = _choice(params, "unit", PERIOD_UNITS, None)
    addiction_unit = _choice(params, "addiction_unit", ("hour", "day"), None)
    event = params.get("event") or None
    _on(params)
    _limit(params, 255, 10_000)
    active: dict[date, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for ev in _events(state, from_date, to_date, params.get("where")):
        if event is None or ev["event"] == event:
            t = ev["properties"]["time"]
            period = _period_start(_day_of(t), unit)
            step = 3600 if addiction_unit == "hour" else 86400
            active[period][ev["properties"]["distinct_id"]].add(t // step)
    data = {}
    for period in _series(from_date, to_date, unit):
        start = date.fromisoformat(period)
        slots = (_next_period(start, unit) - start).days * (24 if addiction_unit == "hour" else 1)
        users = active.get(start, {})
        data[period] = [sum(1 for s in users.values() if len(s) > i) for i in range(slots)]
    return {"data": data}


# --- insights -------------------------------------------------------------------------------


def insights(state: State, params: dict) -> dict:
    raw = _required(params, "bookmark_id")
    try:
        bookmark = int(raw)
    except ValueError:
        raise ApiError(400, "'bookmark_id' must be an integer") from None
    report = datagen.SAVED_INSIGHTS.get(bookmark)
    if report is None:
        raise ApiError(400, f"bookmark_id {bookmark} does not exist")  # [I] the exact text
    to_date = datetime.now(UTC).date()
    from_date = to_date - timedelta(days=report["days"] - 1)
    weeks = _series(from_date, to_date, "week")
    series: dict[str, dict[str, int]] = {
        name: {f"{w}T00:00:00+00:00": 0 for w in weeks} for name in report["events"]
    }
    for ev in _events(state, from_date, to_date, None):
        if ev["event"] in series:
            week = _label(ev["properties"]["time"], "week")
            series[ev["event"]][f"{week}T00:00:00+00:00"] += 1
    return {
        "computed_at": datetime.now(UTC).isoformat(),
        "date_range": {
            "from_date": f"{from_date.isoformat()}T00:00:00+00:00",
            "to_date": f"{to_date.isoformat()}T23:59:59.999000+00:00",
        },
        "headers": ["$event"],
        "series": series,
    }


# --- the activity stream --------------------------------------------------------------------


def activity_stream(state: State, params: dict) -> dict:
    ids = _string_list_param(params, "distinct_ids")
    if not ids:
        raise ApiError(400, "'distinct_ids' is a required parameter")
    from_date, to_date = _date_range(params)
    wanted = set(ids)
    events = [
        {"event": ev["event"], "properties": ev["properties"]}
        for ev in _events(state, from_date, to_date, None)
        if ev["properties"]["distinct_id"] in wanted
    ]
    return {"status": "ok", "results": {"events": events}}


# --- revenue --------------------------------------------------------------------------------


def _transaction_day(item: Any) -> date | None:
    if not isinstance(item, dict) or not isinstance(item.get("$time"), str):
        return None
    try:
        return datetime.fromisoformat(item["$time"][:19]).date()
    except ValueError:
        return None


def revenue(state: State, params: dict) -> dict:
    from_date, to_date = _date_range(params)
    unit = _choice(params, "unit", PERIOD_UNITS, "day")
    rows = {p: {"amount": 0.0, "paid": set()} for p in _series(from_date, to_date, unit)}
    overall = {"amount": 0.0, "paid": set()}
    with state.profiles_lock:
        profiles = {did: props for did, props in state.overlay.items() if props}
        total = state.profile_count + len(state.extra_order)
    for did, props in profiles.items():
        for item in props.get("$transactions") or ():
            day = _transaction_day(item)
            amount = item.get("$amount") if isinstance(item, dict) else None
            if day is None or not from_date <= day <= to_date:
                continue
            if not isinstance(amount, int | float) or isinstance(amount, bool):
                continue
            for row in (rows[_period_start(day, unit).isoformat()], overall):
                row["amount"] += amount
                row["paid"].add(did)
    results = {
        key: {"amount": round(row["amount"], 2), "count": total, "paid_count": len(row["paid"])}
        for key, row in {"$overall": overall, **rows}.items()
    }
    return {
        "computed_at": datetime.now(UTC).isoformat(),
        "status": "ok",
        "session_id": f"{int(datetime.now(UTC).timestamp())}-revenue",
        "results": results,
    }


# path (after /api/query and /api/2.0) -> endpoint
ENDPOINTS: dict[str, Callable[[Any, Request], Reply]] = {
    "/segmentation": query_endpoint(segmentation),
    "/segmentation/numeric": query_endpoint(segmentation_numeric),
    "/segmentation/sum": query_endpoint(segmentation_sum),
    "/segmentation/average": query_endpoint(segmentation_average),
    "/events": query_endpoint(event_counts),
    "/events/properties/top": query_endpoint(property_top),
    "/events/properties/values": query_endpoint(property_values),
    "/funnels/list": query_endpoint(funnels_list),
    "/funnels": query_endpoint(funnel_query),
    "/retention": query_endpoint(retention),
    "/retention/addiction": query_endpoint(retention_frequency),
    "/insights": query_endpoint(insights),
    "/stream/query": query_endpoint(activity_stream),
    "/engage/revenue": query_endpoint(revenue),
}
