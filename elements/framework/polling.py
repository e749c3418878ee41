"""What an element gives the events poller (contract §10): one ``Poller`` per pollable object.

The platform (``events/``) knows nothing about any vendor. For each (instance, object) it calls
``poller.poll(call, state)`` with the state it committed after the previous poll (``None`` for
the first one, a baseline whose changes are never notified), and commits the returned state
together with the returned changes, in one transaction. A poll that dies before that commit is
simply made again from the old state: the vendor's own timestamps are the cursors, windows
overlap, and each change carries a ``version`` so that a change seen twice is dropped (the
platform keeps one event per (instance, object, objectId, version)).

``SnapshotPoller`` is the generic machinery for objects the vendor cannot list by change time
(CREATED, UPDATED and DELETED by comparing the whole list with the previous one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from elements.framework.definition import Call

CREATED, UPDATED, DELETED = "CREATED", "UPDATED", "DELETED"


@dataclass(frozen=True)
class Change:
    """One change of one record, as the vendor shows it."""

    object_id: str
    event_type: str  # CREATED | UPDATED | DELETED
    version: str  # with object_id: the same change seen again has the same version
    date: datetime  # when it changed (the vendor's time where it says)
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PollResult:
    changes: list[Change]
    state: dict  # JSON-serialisable; handed back to the next poll


class Poller(Protocol):
    def poll(self, call: Call, state: dict | None) -> PollResult: ...


@dataclass(frozen=True)
class Polling:
    """An element's events by polling: its pollers by object name, and which vendor quota a
    configuration's polls draw on (instances of one vendor project share its query limits)."""

    pollers: Mapping[str, Poller]
    budget_key: Callable[[dict], str]


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SnapshotPoller:
    """Changes by comparing the vendor's whole list with the previous poll's.

    ``fetch(call)`` returns every record; ``id_of(record)`` its id; ``compared(record)`` the part
    whose change is an UPDATED (default: the whole record). The state keeps, per id, the
    fingerprint and a change counter: the counter makes each change's version unique, so a
    record deleted and re-created with the same content is notified again.
    """

    def __init__(
        self,
        fetch: Callable[[Call], Iterable[Mapping[str, Any]]],
        *,
        id_of: Callable[[Mapping[str, Any]], Any],
        compared: Callable[[Mapping[str, Any]], Any] | None = None,
    ):
        self.fetch = fetch
        self.id_of = id_of
        self.compared = compared or (lambda record: record)

    def poll(self, call: Call, state: dict | None) -> PollResult:
        now = datetime.now(UTC)
        previous: dict = (state or {}).get("records", {})
        counters: dict = dict((state or {}).get("counters", {}))
        current: dict[str, tuple[str, Mapping]] = {}
        for record in self.fetch(call):
            current[str(self.id_of(record))] = (fingerprint(self.compared(record)), record)
        changes = []

        def version(object_id: str, digest: str) -> str:
            counters[object_id] = counters.get(object_id, 0) + 1
            return f"{counters[object_id]}:{digest}"

        for object_id, (digest, record) in current.items():
            if object_id not in previous:
                changes.append(Change(object_id, CREATED, version(object_id, digest), now, record))
            elif previous[object_id] != digest:
                changes.append(Change(object_id, UPDATED, version(object_id, digest), now, record))
        for object_id in previous:
            if object_id not in current:
                changes.append(
                    Change(
                        object_id, DELETED, version(object_id, "deleted"), now, {"id": object_id}
                    )
                )
        records = {object_id: digest for object_id, (digest, _) in current.items()}
        # Counters of deleted records stay (a re-created record continues its count).
        return PollResult(changes=changes, state={"records": records, "counters": counters})
