"""Deterministic data generators: raw-export events and engage profiles.

Everything here is a pure function of its inputs, so tests can compute exactly what the server
sends without talking to it:

* :func:`export_lines` yields the exact JSONL bytes lines of ``/api/2.0/export``.
* :func:`event` returns one generated event as a dict.
* :func:`profile` / :func:`profile_properties` return generated engage profile ``i``.
* :func:`top_events` returns the body of ``/api/query/events/top``.

Events never live in memory as a whole: the generator yields one line at a time, so a stream of
1,000,000 events costs constant memory.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache

__all__ = [
    "CITIES",
    "EVENT_NAMES",
    "PLANS",
    "event",
    "export_lines",
    "export_text_lines",
    "iter_dates",
    "parse_date",
    "profile",
    "profile_distinct_id",
    "profile_index",
    "profile_properties",
    "top_events",
]

_M64 = (1 << 64) - 1

# (event name, weight out of 100) -- weights drive both the generator and /events/top.
_EVENT_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Page View", 34),
    ("Login", 18),
    ("Search", 14),
    ("Add To Cart", 12),
    ("Purchase", 8),
    ("Signed Up", 6),
    ("Logout", 5),
    ("Share", 3),
)
EVENT_NAMES: tuple[str, ...] = tuple(name for name, _ in _EVENT_WEIGHTS)
_EVENT_TABLE: tuple[int, ...] = tuple(
    idx for idx, (_, weight) in enumerate(_EVENT_WEIGHTS) for _ in range(weight)
)
assert len(_EVENT_TABLE) == 100

CITIES: tuple[str, ...] = (
    "Dallas",
    "Austin",
    "Paris",
    "London",
    "Berlin",
    "Tokyo",
    "San Francisco",
    "New York",
    "São Paulo",
)
PLANS: tuple[str, ...] = ("free", "pro", "enterprise")
_TAG_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("beta",),
    ("beta", "mobile"),
    ("mobile",),
    ("web", "returning"),
    ("returning",),
    ("web",),
)
_ACCOUNT_TIERS: tuple[str, ...] = ("Bronze", "Silver", "Gold")
_FIRST_NAMES: tuple[str, ...] = (
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Barbara",
    "Ken",
    "Edsger",
    "Frances",
)
_LAST_NAMES: tuple[str, ...] = ("Lovelace", "Hopper", "Turing", "Torvalds", "Liskov", "Thompson")

# Pre-encoded JSON fragments for the fast export line formatter.
_J_EVENTS = tuple(json.dumps(n, ensure_ascii=False) for n in EVENT_NAMES)
_J_CITIES = tuple(json.dumps(c, ensure_ascii=False) for c in CITIES)
_J_PLANS = tuple(json.dumps(p) for p in PLANS)
_J_TAGS = tuple(json.dumps(list(t), separators=(",", ":")) for t in _TAG_SETS)

_USERS = 5000  # distinct_id pool for events: user-0 .. user-4999


def _mix(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-distributed 64-bit integer hash."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------


def parse_date(value: str | date) -> date:
    """Parse ``yyyy-mm-dd`` (strict) or pass a :class:`date` through."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise ValueError(f"invalid date {value!r}; expected yyyy-mm-dd")
    return date.fromisoformat(value)


def iter_dates(from_date: str | date, to_date: str | date) -> Iterator[date]:
    """Inclusive UTC day range."""
    day = parse_date(from_date)
    last = parse_date(to_date)
    one = timedelta(days=1)
    while day <= last:
        yield day
        day += one


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------


def _event_fields(day_start: int, day_seed: int, k: int, per_day: int) -> tuple:
    h1 = _mix(day_seed + k)
    h2 = _mix(h1 ^ 0xA5A5A5A5A5A5A5A5)
    t = day_start + (k * 86400) // per_day
    return (
        _EVENT_TABLE[h1 % 100],  # event index
        t,
        (h1 >> 8) % _USERS,  # user
        f"{h1:016x}{h2:016x}",  # $insert_id
        t * 1000 + (h2 % 600_000),  # mp_processing_time_ms
        (h1 >> 24) % len(CITIES),
        (h1 >> 32) % len(PLANS),
        (h1 >> 40) % len(_TAG_SETS),
    )


def _day_params(day: date) -> tuple[int, int]:
    day_start = calendar.timegm(day.timetuple())
    day_seed = (day.toordinal() * 0x100000001B3) & _M64
    return day_start, day_seed


def _fields_to_dict(f: tuple, time_in_ms: bool = False) -> dict:
    ev, t, user, iid, ptime, city, plan, tags = f
    return {
        "event": EVENT_NAMES[ev],
        "properties": {
            "time": t * 1000 if time_in_ms else t,
            "distinct_id": f"user-{user}",
            "$insert_id": iid,
            "mp_processing_time_ms": ptime,
            "$city": CITIES[city],
            "nested": {"plan": PLANS[plan], "tags": list(_TAG_SETS[tags])},
        },
    }


def event(day: str | date, index: int, events_per_day: int, *, time_in_ms: bool = False) -> dict:
    """Return generated event ``index`` (0-based) of ``day`` as a dict."""
    if not 0 <= index < events_per_day:
        raise IndexError("event index out of range")
    day_start, day_seed = _day_params(parse_date(day))
    return _fields_to_dict(_event_fields(day_start, day_seed, index, events_per_day), time_in_ms)


def export_text_lines(
    from_date: str | date,
    to_date: str | date,
    events_per_day: int,
    event_filter: Iterable[str] | None = None,
    *,
    where: str | None = None,
    limit: int | None = None,
    time_in_ms: bool = False,
) -> Iterator[str]:
    """Like :func:`export_lines` but yields ``str`` lines (each ending in ``\\n``)."""
    if events_per_day <= 0:
        return
    wanted: set[int] | None = None
    if event_filter is not None:
        names = set(event_filter)
        wanted = {i for i, n in enumerate(EVENT_NAMES) if n in names}
        if not wanted:
            return
    predicate = None
    if where:
        from .selector import compile_selector

        predicate = compile_selector(where)
    remaining = limit if limit is not None and limit > 0 else -1
    mult = 1000 if time_in_ms else 1
    j_events, j_cities, j_plans, j_tags = _J_EVENTS, _J_CITIES, _J_PLANS, _J_TAGS
    table = _EVENT_TABLE
    mix = _mix
    n_cities, n_plans, n_tags = len(CITIES), len(PLANS), len(_TAG_SETS)
    for day in iter_dates(from_date, to_date):
        day_start, day_seed = _day_params(day)
        for k in range(events_per_day):
            h1 = mix(day_seed + k)
            ev = table[h1 % 100]
            if wanted is not None and ev not in wanted:
                continue
            if predicate is not None:
                fields = _event_fields(day_start, day_seed, k, events_per_day)
                row = _fields_to_dict(fields, time_in_ms)
                if not predicate(row["properties"], row["event"]):
                    continue
            h2 = mix(h1 ^ 0xA5A5A5A5A5A5A5A5)
            t = day_start + (k * 86400) // events_per_day
            yield (
                f'{{"event":{j_events[ev]},"properties":{{"time":{t * mult},'
                f'"distinct_id":"user-{(h1 >> 8) % _USERS}",'
                f'"$insert_id":"{h1:016x}{h2:016x}",'
                f'"mp_processing_time_ms":{t * 1000 + h2 % 600_000},'
                f'"$city":{j_cities[(h1 >> 24) % n_cities]},'
                f'"nested":{{"plan":{j_plans[(h1 >> 32) % n_plans]},'
                f'"tags":{j_tags[(h1 >> 40) % n_tags]}}}}}}}\n'
            )
            if remaining > 0:
                remaining -= 1
                if remaining == 0:
                    return


def export_lines(
    from_date: str | date,
    to_date: str | date,
    events_per_day: int,
    event_filter: Iterable[str] | None = None,
    *,
    where: str | None = None,
    limit: int | None = None,
    time_in_ms: bool = False,
) -> Iterator[bytes]:
    """Yield the exact JSONL byte lines (``b"...\\n"``) the export endpoint streams.

    ``from_date``/``to_date`` are inclusive ``yyyy-mm-dd`` UTC days.  ``event_filter`` is the
    decoded ``event`` parameter (names), ``where`` a selector expression, ``limit`` the maximum
    number of lines.  Constant memory.
    """
    for line in export_text_lines(
        from_date,
        to_date,
        events_per_day,
        event_filter,
        where=where,
        limit=limit,
        time_in_ms=time_in_ms,
    ):
        yield line.encode("utf-8")


def top_events(events_per_day: int, type_: str = "general", limit: int | None = None) -> dict:
    """Body of ``/api/query/events/top``: today's counts derived from the event weights.

    With ``events_per_day == 0`` a nominal 1000 events/day is used so the answer stays useful.
    """
    base = events_per_day if events_per_day > 0 else 1000
    rows = []
    for idx, (name, weight) in enumerate(_EVENT_WEIGHTS):
        total = max(1, round(base * weight / 100))
        if type_ == "unique":
            amount = max(1, min(total, _USERS) * 3 // 5)
        elif type_ == "average":
            amount = max(1, round(total / max(1, min(total, _USERS) * 3 // 5)))
        else:
            amount = total
        change = ((_mix(idx * 7919 + 17) % 2001) - 1000) / 1000.0
        rows.append({"amount": int(amount), "event": name, "percent_change": change})
    rows.sort(key=lambda r: (-r["amount"], r["event"]))
    if limit is not None and limit >= 0:
        rows = rows[:limit]
    return {"events": rows, "type": type_}


# --------------------------------------------------------------------------------------------
# profiles
# --------------------------------------------------------------------------------------------

_PROFILE_EPOCH = calendar.timegm((2023, 1, 1, 0, 0, 0))


@lru_cache(maxsize=8192)
def _day_iso(day: int) -> str:
    return (_EPOCH_DATE + timedelta(days=day)).isoformat()


_EPOCH_DATE = date(1970, 1, 1)


def _iso(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) -- hand-rolled, ~5x faster than strftime."""
    day, secs = divmod(ts, 86400)
    hour, secs = divmod(secs, 3600)
    minute, sec = divmod(secs, 60)
    return f"{_day_iso(day)}T{hour:02d}:{minute:02d}:{sec:02d}"


def profile_distinct_id(i: int) -> str:
    return f"user-{i}"


def profile_index(distinct_id: str, count: int) -> int | None:
    """Index of a generated profile id (``user-<i>`` with ``0 <= i < count``), else None."""
    if not distinct_id.startswith("user-"):
        return None
    digits = distinct_id[5:]
    if not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        return None
    i = int(digits)
    return i if i < count else None


def profile_properties(i: int) -> dict:
    """The generated ``$properties`` of profile ``i`` (a fresh dict every call).

    Some profiles deliberately miss some properties (``$city`` when ``i % 11 == 5``, ``plan`` when
    ``i % 7 == 3``, ``$email`` when ``i % 13 == 12``) so ``defined()`` filters have work to do.
    """
    h = _mix(i * 0x2545F4914F6CDD1D + 0x1234)
    created = _PROFILE_EPOCH + (h % (400 * 86400))
    last_seen = created + ((h >> 20) % (200 * 86400))
    first = _FIRST_NAMES[(h >> 5) % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(h >> 9) % len(_LAST_NAMES)]
    props: dict = {
        "$created": _iso(created),
        "$first_name": first,
        "$last_name": last,
        "$name": f"{first} {last}",
        "$last_seen": _iso(last_seen),
        "age": 18 + (h >> 13) % 60,
        "score": round(((h >> 40) % 10_000) / 100.0, 2),
        "vip": (h >> 33) % 10 == 0,
        "tags": list(_TAG_SETS[(h >> 44) % len(_TAG_SETS)]),
        "Account Tier": _ACCOUNT_TIERS[(h >> 50) % len(_ACCOUNT_TIERS)],
    }
    if i % 13 != 12:
        props["$email"] = f"user{i}@example.com"
    if i % 11 != 5:
        props["$city"] = CITIES[(h >> 27) % len(CITIES)]
    if i % 7 != 3:
        props["plan"] = PLANS[(h >> 37) % len(PLANS)]
    return props


def profile(i: int) -> dict:
    """Generated engage result row ``{"$distinct_id": "user-<i>", "$properties": {...}}``."""
    return {"$distinct_id": profile_distinct_id(i), "$properties": profile_properties(i)}


# --------------------------------------------------------------------------------------------
# the query API's seed: events as dicts, saved funnels and a saved Insights report
# --------------------------------------------------------------------------------------------

# Saved funnels (``/funnels/list``); their numbers are computed from the generated events.
SAVED_FUNNELS: tuple[dict, ...] = (
    {"funnel_id": 7509, "name": "Signup funnel", "steps": ("Page View", "Signed Up", "Login")},
    {
        "funnel_id": 7510,
        "name": "Purchase funnel",
        "steps": ("Page View", "Add To Cart", "Purchase"),
    },
)
FUNNEL_DEFAULT_LENGTH_DAYS = 14  # the saved funnels' conversion window

# A saved Insights report (``/insights?bookmark_id=``): weekly counts of two events over the
# last ``days`` days up to today (UTC).
SAVED_INSIGHTS: dict[int, dict] = {
    44001: {"name": "Logins and purchases", "events": ("Login", "Purchase"), "days": 28},
}


def iter_events(from_date: str | date, to_date: str | date, events_per_day: int) -> Iterator[dict]:
    """Every generated event of the inclusive day range as a dict, in time order."""
    if events_per_day <= 0:
        return
    for day in iter_dates(from_date, to_date):
        day_start, day_seed = _day_params(day)
        for k in range(events_per_day):
            yield _fields_to_dict(_event_fields(day_start, day_seed, k, events_per_day))
