"""Events by polling for Mixpanel (contract §10): what changed since the previous poll.

- ``users``: engage profiles whose ``$last_seen`` is at or after the cursor (the highest
  ``$last_seen`` seen) minus an overlap; CREATED when ``$created`` is after the previous cursor,
  else UPDATED; version: ``$last_seen``.
- ``activities``: the raw export of the cursor's day through today, keeping events whose
  ``mp_processing_time_ms`` (when Mixpanel stored them, so late imports of old events count) is
  at or after the cursor minus the overlap; CREATED, ``objectId`` = ``$insert_id``; version: the
  processing time.

Both keep, in their state, the versions seen inside the overlap, so a record seen by the
previous poll is not reported again; the platform's (instance, object, objectId, version) key
catches anything else. Timestamps are Mixpanel's, never this machine's, except where nothing
has been seen yet: then the poll's own time (minus the overlap) stands in.

``cohorts`` and ``annotations``: snapshot comparison (``elements.framework.polling.
SnapshotPoller``) of the whole list, one vendor query per poll (``list_cohorts``,
``list_annotations``, the operations' own calls). CREATED, UPDATED or DELETED by ``id``; a
cohort changes with its name, description or visibility (not its member ``count``, which moves
whenever a profile joins or leaves: a change of profiles), an annotation with its date, description
or tags. Version: the record's change counter and the fingerprint of what is compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from elements.framework.definition import Call
from elements.framework.polling import (
    CREATED,
    UPDATED,
    Change,
    Polling,
    PollResult,
    SnapshotPoller,
)
from elements.mixpanel.annotations import list_annotations
from elements.mixpanel.bulk import ENGAGE_PAGE_SIZE, TERMINATED, ExportTerminatedEarly
from elements.mixpanel.cohorts import list_cohorts
from elements.mixpanel.profiles import engage
from elements.mixpanel.vendor import project_query

# Records may show up late (Mixpanel's ingestion is eventually consistent): every window
# starts this long before the cursor.
OVERLAP = timedelta(minutes=5)
# Engage's dates carry no zone: they are UTC.
ENGAGE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _parse_engage_date(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _engage_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(ENGAGE_FORMAT)


def _profiles_since(call: Call, since: datetime) -> Iterator[dict]:
    selector = f'properties["$last_seen"] >= "{_engage_text(since)}"'
    page, session_id = 0, None
    while True:
        body, _ = engage(
            call,
            {
                "where": selector,
                "page": page,
                "session_id": session_id,
                "page_size": ENGAGE_PAGE_SIZE,
            },
        )
        session_id = body.get("session_id") or session_id
        records = body["results"]
        yield from records
        size = body.get("page_size") if isinstance(body.get("page_size"), int) else None
        size = size or ENGAGE_PAGE_SIZE
        total = body.get("total")
        more = total > (page + 1) * size if isinstance(total, int) else len(records) >= size
        if not records or not more:
            return
        page += 1


class UsersPoller:
    def poll(self, call: Call, state: dict | None) -> PollResult:
        now = datetime.now(UTC)
        previous = _parse_engage_date((state or {}).get("cursor"))
        since = (previous or now) - OVERLAP
        seen: dict[str, str] = dict((state or {}).get("seen", {}))
        cursor = previous
        changes = []
        for record in _profiles_since(call, since):
            distinct_id = record.get("$distinct_id")
            properties = record.get("$properties") or {}
            last_seen_text = properties.get("$last_seen")
            last_seen = _parse_engage_date(last_seen_text)
            if distinct_id is None or last_seen is None or last_seen < since:
                continue
            distinct_id = str(distinct_id)
            cursor = max(cursor, last_seen) if cursor else last_seen
            if seen.get(distinct_id) == last_seen_text:
                continue
            seen[distinct_id] = last_seen_text
            created = _parse_engage_date(properties.get("$created"))
            new = previous is not None and created is not None and created > previous
            changes.append(
                Change(
                    object_id=distinct_id,
                    event_type=CREATED if new else UPDATED,
                    version=last_seen_text,
                    date=last_seen,
                    record=record,
                )
            )
        cursor = cursor or since
        horizon = cursor - OVERLAP
        seen = {k: v for k, v in seen.items() if (_parse_engage_date(v) or cursor) >= horizon}
        return PollResult(changes=changes, state={"cursor": cursor.isoformat(), "seen": seen})


def _insert_id(event: dict) -> str:
    properties = event.get("properties") or {}
    insert_id = properties.get("$insert_id")
    if insert_id not in (None, ""):
        return str(insert_id)
    # No $insert_id: what Mixpanel itself would deduplicate on.
    key = [event.get("event"), properties.get("time"), properties.get("distinct_id")]
    return "h:" + hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()[:32]


def _processing_ms(event: dict) -> int | None:
    properties = event.get("properties") or {}
    value = properties.get("mp_processing_time_ms")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    time = properties.get("time")
    if isinstance(time, int | float) and not isinstance(time, bool):
        return int(time * 1000) if time < 10**11 else int(time)
    return None


class ActivitiesPoller:
    def poll(self, call: Call, state: dict | None) -> PollResult:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        previous = (state or {}).get("cursor")
        overlap_ms = int(OVERLAP.total_seconds() * 1000)
        since = (previous if isinstance(previous, int) else now_ms) - overlap_ms
        seen: dict[str, int] = dict((state or {}).get("seen", {}))
        cursor = previous if isinstance(previous, int) else None
        changes = []
        first_day = datetime.fromtimestamp(since / 1000, UTC).date()
        today = datetime.now(UTC).date()
        day = min(first_day, today)
        while day <= today:
            for event in self._export_day(call, day):
                processed = _processing_ms(event)
                if processed is None or processed < since:
                    continue
                cursor = max(cursor, processed) if cursor is not None else processed
                insert_id = _insert_id(event)
                if seen.get(insert_id) == processed:
                    continue
                seen[insert_id] = processed
                changes.append(
                    Change(
                        object_id=insert_id,
                        event_type=CREATED,
                        version=str(processed),
                        date=datetime.fromtimestamp(processed / 1000, UTC),
                        record=event,
                    )
                )
            day += timedelta(days=1)
        cursor = cursor if cursor is not None else since
        horizon = cursor - overlap_ms
        seen = {k: v for k, v in seen.items() if v >= horizon}
        return PollResult(changes=changes, state={"cursor": cursor, "seen": seen})

    @staticmethod
    def _export_day(call: Call, day) -> Iterator[dict]:
        lines = call.vendor.stream_lines(
            "GET",
            "data",
            "/api/2.0/export",
            query={
                "from_date": day.isoformat(),
                "to_date": day.isoformat(),
                **project_query(call.configuration),
            },
        )
        with lines:
            for line in lines:
                line = line.strip()
                if not line:
                    continue
                if line == TERMINATED:
                    raise ExportTerminatedEarly(provider_message="terminated early")
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # an unreadable line is no change we can name
                if isinstance(event, dict):
                    yield event


def budget_key(configuration: dict) -> str:
    """Mixpanel's query limits are per project: instances of one project share a budget."""
    region = configuration.get("region") or "US"
    if configuration.get("project_id") is not None:
        return f"mixpanel:{region}:project:{configuration['project_id']}"
    # An API secret alone names one project; only a hash of it is kept.
    secret = str(configuration.get("username") or "")
    return f"mixpanel:{region}:secret:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"


# Annotations are listed by day: one request wide enough for any annotation a project has.
ANNOTATIONS_FROM = date(2000, 1, 1)
ANNOTATIONS_AHEAD = timedelta(days=3660)


def _all_annotations(call: Call) -> list[dict]:
    today = datetime.now(UTC).date()
    annotations, _ = list_annotations(
        call, from_date=ANNOTATIONS_FROM, to_date=today + ANNOTATIONS_AHEAD
    )
    return annotations


COHORTS = SnapshotPoller(
    lambda call: list_cohorts(call)[0],
    id_of=lambda cohort: cohort["id"],
    compared=lambda c: [c.get("name"), c.get("description"), c.get("is_visible")],
)
ANNOTATIONS = SnapshotPoller(
    _all_annotations,
    id_of=lambda annotation: annotation["id"],
    compared=lambda a: [a.get("date"), a.get("description"), a.get("tags")],
)

POLLING = Polling(
    pollers={
        "users": UsersPoller(),
        "activities": ActivitiesPoller(),
        "cohorts": COHORTS,
        "annotations": ANNOTATIONS,
    },
    budget_key=budget_key,
)
