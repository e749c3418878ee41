"""Imported events in the raw export: what ``/import`` accepted is exported too, as Mixpanel
does, after the generated events of the range, in the order it was imported (stable between
requests, so a client can resume an export by line position).

Mixpanel's export can repeat an event; so can this one: an event imported twice (the same
``$insert_id``) is exported twice. Only the events the simulator keeps (the last 10,000, see
``GET /__sim__/imported``) are exported.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime

from .ingest import MS_THRESHOLD


def _day_of(time_value) -> date | None:
    if isinstance(time_value, bool) or not isinstance(time_value, int | float):
        return None
    seconds = time_value / 1000.0 if time_value > MS_THRESHOLD else float(time_value)
    return datetime.fromtimestamp(seconds, UTC).date()


def imported_lines(
    events: Iterable[dict],
    from_date: date,
    to_date: date,
    event_filter: Iterable[str] | None = None,
    *,
    predicate=None,
    time_in_ms: bool = False,
) -> Iterator[str]:
    """The JSONL lines of the imported ``events`` whose time falls in ``from_date``..``to_date``
    (UTC days), with the export's ``event`` and ``where`` filters; ``time`` in seconds (or
    milliseconds with ``time_in_ms``), as the export sends it."""
    names = set(event_filter) if event_filter is not None else None
    for ev in events:
        props = ev.get("properties") or {}
        t = props.get("time")
        day = _day_of(t)
        if day is None or not from_date <= day <= to_date:
            continue
        if names is not None and ev.get("event") not in names:
            continue
        if predicate is not None and not predicate(props, ev.get("event")):
            continue
        seconds = int(t / 1000) if t > MS_THRESHOLD else int(t)
        out = {"event": ev.get("event"), "properties": {**props, "time": seconds}}
        if time_in_ms:
            out["properties"]["time"] = int(t) if t > MS_THRESHOLD else int(t * 1000)
        yield json.dumps(out, separators=(",", ":")) + "\n"


def with_imported(lines, state, from_date, to_date, event_filter, where, limit, time_in_ms):
    """The export's generated ``lines`` followed by the imported events of the range, at most
    ``limit`` in all."""
    from .selector import compile_selector

    with state.lock:
        kept = list(state.imported)
    predicate = compile_selector(where) if where else None
    both = itertools.chain(
        lines,
        imported_lines(
            kept, from_date, to_date, event_filter, predicate=predicate, time_in_ms=time_in_ms
        ),
    )
    return itertools.islice(both, limit) if limit else both
