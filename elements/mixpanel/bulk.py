"""Bulk download sources for Mixpanel's objects (contract §6).

- ``activities``: the raw export (reference §7), one UTC day per request, read line by line
  (``VendorClient.stream_lines`` gunzips and splits); a line that is not a JSON object is a
  failed record, not a fatal error; the ``terminated early`` line ends a day's stream short,
  which is an error to retry.
  Checkpoint: the day and how many lines of it are already read.
  Incremental: the export starts at the day of ``since``; that day is filtered exactly on the
  event time (``properties.time``, epoch seconds or milliseconds). The export can repeat an
  event: a day's stream keeps each ``$insert_id`` once (a repeat has the same time, hence the
  same day). The set of a day's ids lives in memory for that day only; a job resumed mid-day
  rebuilds it from the lines before its checkpoint, which it reads (and skips) anyway.
- ``users``: engage pages with ``session_id``; checkpoint: the next page and the session.
  Incremental: the selector asks for ``$last_seen`` at or after ``since`` (``datetime()``), and
  the pages are filtered exactly.
- ``service-accounts``: one page, filtered on ``created`` (``bulk_sources.ListSource``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from elements.framework.bulk import BulkQuery, BulkQueryError, Page
from elements.framework.bulk_sources import ListSource, check_days, days_asked
from elements.framework.ceql import CeqlError
from elements.framework.definition import Call
from elements.framework.incremental import day_windows, instant
from elements.mixpanel import service_accounts
from elements.mixpanel.export_reader import (  # noqa: F401 (re-exported)
    DayReader,
    ExportTerminatedEarly,
    content_lines,
    event_id,
)
from elements.mixpanel.profiles import engage, with_id
from elements.mixpanel.selector_language import RAW_QUERY_FIELD, expr_to_selector
from elements.mixpanel.vendor import project_query
from platform_core.conf import platform_settings

ENGAGE_PAGE_SIZE = 1000
DEFAULT_DAYS = 30


def _selector(query: BulkQuery) -> str | None:
    expr = query.where
    if expr is None:
        return None
    # A raw selector passes through, as for GET /users.
    if getattr(expr, "field", None) == RAW_QUERY_FIELD and getattr(expr, "op", None) == "=":
        return str(expr.value)
    try:
        return expr_to_selector(expr, query.where_text or "")
    except CeqlError as exc:
        raise BulkQueryError(str(exc)) from None


def export_stream(call: Call, day: date, *, selector: str | None = None, gzip: bool = True):
    """One UTC day of the raw export (reference §7) as the vendor's stream (``LineStream``:
    lines, or blocks of whole lines for the bulk reader)."""
    params = {"from_date": day.isoformat(), "to_date": day.isoformat()}
    if selector:
        params["where"] = selector
    return call.vendor.stream_lines(
        "GET",
        "data",
        "/api/2.0/export",
        query={**params, **project_query(call.configuration)},
        gzip=gzip,
    )


def export_lines(
    call: Call, day: date, *, selector: str | None = None, gzip: bool = True
) -> Iterator[bytes]:
    """One UTC day of the raw export, line by line: blank lines passed over, the
    ``terminated early`` line raised as ExportTerminatedEarly. Close it to close the stream."""
    lines = export_stream(call, day, selector=selector, gzip=gzip)
    with lines:
        yield from content_lines(lines)


def _days(query: BulkQuery) -> list[date]:
    """The UTC days to export, one request each (the export's own unit): from the day of
    ``since`` (``from`` or the cursor; else the last DEFAULT_DAYS days) to ``to``. None when the
    cursor is past ``to``."""
    return [first for first, _ in day_windows(*days_asked(query, DEFAULT_DAYS))]


class ActivitiesSource:
    def validate(self, query: BulkQuery) -> None:
        _selector(query)
        check_days(query, DEFAULT_DAYS)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        selector = _selector(query)
        days = _days(query)
        start_day = checkpoint.get("day") if checkpoint else None
        skip = checkpoint.get("line", 0) if checkpoint else 0
        since = query.since.timestamp() if query.since else None
        for index, day in enumerate(days):
            if start_day and day.isoformat() < start_day:
                continue
            to_skip = skip if start_day == day.isoformat() else 0
            # Only the first day can hold events before ``since``.
            day_since = since if index == 0 else None
            yield from self._day(call, day, selector, to_skip, (index, len(days)), day_since)

    def _day(
        self, call: Call, day: date, selector, skip: int, progress, since: float | None
    ) -> Iterator[Page]:
        stream = export_stream(
            call, day, selector=selector, gzip=platform_settings.BULK_EXPORT_GZIP
        )
        reader = DayReader(
            day.isoformat(),
            (day + timedelta(days=1)).isoformat(),
            skip=skip,
            since=since,
            progress=progress,
            page_records=platform_settings.BULK_EXPORT_PAGE_RECORDS,
            page_bytes=platform_settings.BULK_EXPORT_PAGE_BYTES,
        )
        with stream:
            yield from reader.pages(stream.blocks())


LAST_SEEN = "$last_seen"


def since_selector(query: BulkQuery) -> str | None:
    """The engage selector for the query: its ``where``, and ``$last_seen`` at or after
    ``since`` (Mixpanel keeps $last_seen without a zone, in UTC here)."""
    selector = _selector(query)
    if query.since is None:
        return selector
    bound = query.since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    since = f'properties["{LAST_SEEN}"] >= datetime("{bound}")'
    return f"({selector}) and {since}" if selector else since


def last_seen(profile: dict) -> datetime | None:
    props = profile.get("$properties")
    return instant(props.get(LAST_SEEN)) if isinstance(props, dict) else None


def seen_since(profile: dict, since: datetime | None) -> bool:
    return since is None or ((seen := last_seen(profile)) is not None and seen >= since)


class UsersSource:
    def validate(self, query: BulkQuery) -> None:
        _selector(query)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        selector = since_selector(query)
        page_number = checkpoint.get("page", 0) if checkpoint else 0
        session_id = checkpoint.get("session_id") if checkpoint else None
        while True:
            body, _ = engage(
                call,
                {
                    "where": selector,
                    "page": page_number,
                    "session_id": session_id,
                    "page_size": ENGAGE_PAGE_SIZE,
                },
            )
            session_id = body.get("session_id") or session_id
            records = [with_id(r) for r in body["results"]]
            total = body.get("total")
            # Mixpanel may clamp the page size: its answer says which one it used.
            size = body.get("page_size")
            size = size if isinstance(size, int) and size > 0 else ENGAGE_PAGE_SIZE
            more = (
                total > (page_number + 1) * size if isinstance(total, int) else len(records) >= size
            ) and bool(records)
            page_number += 1
            # The selector already asked for these; checked again, exactly (and for a vendor
            # that ignores part of a selector).
            records = [r for r in records if seen_since(r, query.since)]
            yield Page(
                records=records,
                raw=[json.dumps(r, separators=(",", ":")).encode() for r in records],
                checkpoint={"page": page_number, "session_id": session_id},
                done=not more,
                cursors=[last_seen(r) for r in records],
            )
            if not more:
                return


def _service_accounts(call: Call) -> list[dict]:
    return service_accounts.list_accounts(call).body


class ServiceAccountsSource(ListSource):
    """Mixpanel lists them all in one call: filtered here on ``created``."""

    def __init__(self):
        super().__init__(fetch=_service_accounts, cursor=lambda account: account.get("created"))
