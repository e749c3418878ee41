"""Events added to the raw export: what ``/import`` accepted and what the control API's
``POST /__sim__/events`` added, in one store, exported by one hook after the generated events
of the range, in the order they were added (stable between requests, so a client can resume an
export by line position).

Each added event is stamped, when it is added, with the simulator's clock (``changes.now``) as
Mixpanel's ``mp_processing_time_ms``: when Mixpanel stored it, which for an import of old events
is long after their ``time`` (a poller that follows processing time sees them as new).

Mixpanel's export can repeat an event; so can this one: an event imported twice (the same
``$insert_id``) is exported twice. The store keeps the last ``MAX_KEPT_EVENTS`` added events,
of both kinds together; ``GET /__sim__/imported`` shows the imported ones as they were received
and ``GET /__sim__/events`` the added ones.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime

from .ingest import MS_THRESHOLD
from .selector import compile_selector

IMPORTED = "import"  # accepted by /import
ADDED = "control"  # added through POST /__sim__/events


class AddedEvents:
    """The store: ``(source, processing_ms, event)`` entries, oldest first."""

    def __init__(self, maxlen: int) -> None:
        self._lock = threading.Lock()
        self._entries: deque[tuple[str, int, dict]] = deque(maxlen=maxlen)

    def add(self, events: Iterable[dict], *, source: str, processing_ms: int) -> None:
        with self._lock:
            self._entries.extend((source, processing_ms, event) for event in events)

    def events(self, source: str) -> list[dict]:
        with self._lock:
            return [event for kind, _, event in self._entries if kind == source]

    def clear(self, source: str) -> None:
        with self._lock:
            kept = [entry for entry in self._entries if entry[0] != source]
            self._entries.clear()
            self._entries.extend(kept)

    def entries(self) -> list[tuple[str, int, dict]]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _day_of(time_value) -> date | None:
    if isinstance(time_value, bool) or not isinstance(time_value, int | float):
        return None
    seconds = time_value / 1000.0 if time_value > MS_THRESHOLD else float(time_value)
    return datetime.fromtimestamp(seconds, UTC).date()


def added_lines(
    entries: Iterable[tuple[str, int, dict]],
    from_date: date,
    to_date: date,
    event_filter: Iterable[str] | None = None,
    *,
    predicate=None,
    time_in_ms: bool = False,
) -> Iterator[str]:
    """The JSONL lines of the added events whose time falls in ``from_date``..``to_date`` (UTC
    days), with the export's ``event`` and ``where`` filters; ``time`` in seconds (or
    milliseconds with ``time_in_ms``), as the export sends it, and ``mp_processing_time_ms``."""
    names = set(event_filter) if event_filter is not None else None
    for _, processing_ms, ev in entries:
        props = ev.get("properties") or {}
        t = props.get("time")
        day = _day_of(t)
        if day is None or not from_date <= day <= to_date:
            continue
        if names is not None and ev.get("event") not in names:
            continue
        if predicate is not None and not predicate(props, ev.get("event")):
            continue
        if time_in_ms:
            exported_time = int(t) if t > MS_THRESHOLD else int(t * 1000)
        else:
            exported_time = int(t / 1000) if t > MS_THRESHOLD else int(t)
        properties = {**props, "time": exported_time, "mp_processing_time_ms": processing_ms}
        out = {"event": ev.get("event"), "properties": properties}
        yield json.dumps(out, separators=(",", ":")) + "\n"


def with_added(
    lines, store: AddedEvents, from_date, to_date, event_filter, where, limit, time_in_ms
):
    """The export's generated ``lines`` followed by the added events of the range, at most
    ``limit`` in all."""
    if len(store):
        predicate = compile_selector(where) if where else None
        lines = itertools.chain(
            lines,
            added_lines(
                store.entries(),
                from_date,
                to_date,
                event_filter,
                predicate=predicate,
                time_in_ms=time_in_ms,
            ),
        )
    return itertools.islice(lines, limit) if limit else lines
