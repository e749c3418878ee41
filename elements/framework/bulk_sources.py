"""Bulk sources for the two shapes most vendor objects have, with incremental sync built in
(elements/framework/incremental.py), so that a new bulk object is a declaration:

- ``ListSource``: an object the vendor lists whole in one call (service accounts, cohorts,
  annotations): the cursor is applied here.
- ``DayWindowSource``: an object read by date range (funnels, revenue...): from the day of
  ``since`` (else the last ``default_days`` days) to ``to``, in windows of at most
  ``window_days`` days (the vendor's limit), one page and one checkpoint per window, so a
  resumed job asks again only for the window it was in; each window's records are filtered
  exactly on the cursor.

Each takes a ``fetch`` that makes the vendor call (the operation's own function, so bulk and
the operation ask Mixpanel the same way) and a ``cursor`` that reads a record's cursor value in
the vendor's form. An object with a stream or pages of its own (Mixpanel's export, engage)
writes its own source: elements/mixpanel/bulk.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from elements.framework.bulk import BulkQuery, BulkQueryError, Page
from elements.framework.definition import Call
from elements.framework.incremental import at_or_after, day_windows
from platform_core.conf import platform_settings


def _page(records: list[dict], cursor: Callable[[dict], Any], **kwargs) -> Page:
    return Page(
        records=records,
        raw=[json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in records],
        cursors=[cursor(r) for r in records],
        **kwargs,
    )


def _no_where(query: BulkQuery) -> None:
    if query.where is not None:
        raise BulkQueryError(
            f"{query.object_name} cannot be filtered, except by its cursor field "
            "(<cursorField> >= '<ISO-8601>')."
        )


def days_asked(query: BulkQuery, default_days: int) -> tuple[date, date]:
    """The first and last UTC day a dated bulk query reads: from the day of ``since`` (``from``
    or the cursor; else the last ``default_days`` days) to the day of ``to`` (else today). The
    first is after the last when the cursor is past ``to``."""
    end = (query.date_to or datetime.now(UTC)).astimezone(UTC).date()
    if query.date_from and query.date_from.astimezone(UTC).date() > end:
        raise BulkQueryError("'from' is later than 'to'.", field="from")
    if query.since:
        return query.since.astimezone(UTC).date(), end
    # By day number: the default range of a `to` early in year 1 would start before day one.
    first = end.toordinal() - (default_days - 1)
    if first < 1:
        raise BulkQueryError(
            f"the {default_days} days up to 'to' start before 0001-01-01: give 'from' as well.",
            field="to",
        )
    return date.fromordinal(first), end


def check_days(query: BulkQuery, default_days: int) -> None:
    """At submit, in constant time whatever the range: a job reads at most BULK_MAX_DAYS days
    (one vendor request or more each: a longer job would hold a bulk worker for weeks), and not
    9999-12-31, whose next day (its checkpoint) does not exist. Not checked again as the job
    runs, so that a job resumed after the setting was lowered still ends."""
    first, last = days_asked(query, default_days)
    if last == date.max:
        raise BulkQueryError("'to' must be before 9999-12-31.", field="to")
    days = (last - first).days + 1
    limit = platform_settings.BULK_MAX_DAYS
    if days > limit:
        raise BulkQueryError(
            f"{first} to {last} is {days:,} days; a job reads at most {limit:,} "
            "(BULK_MAX_DAYS): ask for a shorter range.",
            field="from" if query.since == query.date_from else "q",
        )


class ListSource:
    def __init__(
        self,
        fetch: Callable[[Call], list[dict]],
        cursor: Callable[[dict], Any],
        *,
        day: bool = False,
    ):
        self.fetch = fetch
        self.cursor = cursor
        self.day = day  # a day-granular cursor (the object declares cursor_granularity="day")

    def validate(self, query: BulkQuery) -> None:
        _no_where(query)

    def records(self, call: Call, query: BulkQuery) -> list[dict]:
        """The vendor's list. A subclass whose vendor call can start at a date overrides this
        to ask from ``query.since`` (the records are filtered exactly on the cursor anyway)."""
        return self.fetch(call)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        self.validate(query)
        records = [
            r
            for r in self.records(call, query)
            if at_or_after(self.cursor(r), query.since, day=self.day)
        ]
        yield _page(records, self.cursor, checkpoint={"done": True}, done=True)


class DayWindowSource:
    def __init__(
        self,
        fetch: Callable[[Call, date, date, BulkQuery], list[dict]],
        cursor: Callable[[dict], Any],
        *,
        window_days: int = 1,
        default_days: int = 30,
        day: bool = True,
    ):
        self.fetch = fetch
        self.cursor = cursor
        self.window_days = window_days
        self.default_days = default_days
        self.day = day

    def windows(self, query: BulkQuery) -> list[tuple[date, date]]:
        return day_windows(*days_asked(query, self.default_days), self.window_days)

    def validate(self, query: BulkQuery) -> None:
        _no_where(query)
        check_days(query, self.default_days)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        _no_where(query)
        windows = self.windows(query)
        resume = checkpoint.get("next") if checkpoint else None
        for index, (first, last) in enumerate(windows):
            if resume and first.isoformat() < resume:
                continue
            records = [
                r
                for r in self.fetch(call, first, last, query)
                if at_or_after(self.cursor(r), query.since, day=self.day)
            ]
            done = index == len(windows) - 1
            yield _page(
                records,
                self.cursor,
                checkpoint={"next": (last + timedelta(days=1)).isoformat()},
                done=done,
                progress=(index + 1, len(windows)),
            )
