"""Incremental bulk sync (contract §6): an object's cursor, read from a query and reported back.

Every bulk object declares a ``primary_key`` and a ``cursor_field`` (``ElementObject``). A client
syncs incrementally by asking for ``where <cursorField> >= '<ISO-8601>'`` (or ``from``); the
job's status then reports ``cursor``, the highest cursor value written, and the next sync starts
there. Records exactly at the cursor come back again: clients dedupe on the primary key.

This module is what every source shares:

- ``split_cursor``: the lower bound a ``where`` puts on the cursor, and the rest of the ``where``
  (which the source translates for its vendor as before);
- ``instant``: a vendor's time value (epoch seconds or milliseconds, ISO-8601 with or without a
  zone, a date) as an aware UTC datetime;
- ``cursor_text``: the cursor as the status shows it, ISO-8601 UTC to the second (or the day);
- ``day_windows``: a date range split into the windows a vendor accepts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from elements.framework.bulk import BulkQueryError
from elements.framework.ceql import And, Comparison, Expr, InList, IsNull, Like, Not, Or
from platform_core.dates import OutOfRange, parse_instant

# Epoch values above this are milliseconds (as seconds it would be the year 5138).
_MS_THRESHOLD = 100_000_000_000


class CursorError(BulkQueryError):
    """A ``where`` that uses the cursor field in a way incremental sync cannot honour."""


def parse_iso(text: str) -> datetime | None:
    """An ISO-8601 date or date-time as an aware UTC datetime (no zone: UTC); None if it is
    neither, or out of the range the platform accepts (``platform_core.dates``)."""
    try:
        return parse_instant(text)
    except OutOfRange:
        return None


def instant(value) -> datetime | None:
    """A vendor's time value as an aware UTC datetime: epoch seconds or milliseconds (number),
    ISO-8601 text with or without a zone (none: UTC), a date or datetime. None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        return parse_iso(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    return None


def epoch_seconds(value) -> float | None:
    """A Mixpanel event time (epoch seconds, or milliseconds) in seconds; None if not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value / 1000 if abs(value) >= _MS_THRESHOLD else float(value)


def cursor_text(value: datetime | None, *, day: bool = False) -> str | None:
    """The cursor as the job status shows it: ``2026-11-30T04:00:00Z`` (truncated to the second,
    so the next sync's ``>=`` includes the record it came from), or ``2026-11-30``. Texts of one
    object compare in time order."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.date().isoformat() if day else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(field: str, aliases: tuple[str, ...]) -> frozenset[str]:
    return frozenset((field, *aliases))


def _mentions(expr: Expr, names: frozenset[str]) -> bool:
    if isinstance(expr, And | Or):
        return any(_mentions(item, names) for item in expr.items)
    if isinstance(expr, Not):
        return _mentions(expr.expr, names)
    if isinstance(expr, Comparison | InList | Like | IsNull):
        return expr.field in names
    return False


def split_cursor(
    where: Expr | None, cursor_field: str, aliases: tuple[str, ...] = ()
) -> tuple[datetime | None, Expr | None]:
    """``(since, rest)``: the lower bound that ``<cursor_field> >= '<ISO-8601>'`` puts on the
    cursor, alone or ANDed with other conditions (the latest bound when there are several), and
    the ``where`` without those conditions (None when nothing is left).

    Raises CursorError when the cursor field is used any other way (another operator, under OR or
    NOT, a value that is not an ISO-8601 date or date-time): the source could not ask the vendor
    for exactly that, so it is refused before the job runs."""
    if where is None or not cursor_field:
        return None, where
    names = _names(cursor_field, aliases)
    items = where.items if isinstance(where, And) else (where,)
    since: datetime | None = None
    rest: list[Expr] = []
    for item in items:
        if isinstance(item, Comparison) and item.field in names:
            if item.op != ">=":
                raise CursorError(
                    f"{item.field} (the cursor field) takes only '>=' (incremental sync), "
                    f"not {item.op!r}."
                )
            try:
                bound = parse_instant(item.value) if isinstance(item.value, str) else None
            except OutOfRange as exc:
                raise CursorError(
                    f"{item.field} >= needs an ISO-8601 date or date-time in range: "
                    f"{item.value[:60]!r} {exc}."
                ) from None
            if bound is None:
                raise CursorError(
                    f"{item.field} >= needs an ISO-8601 date or date-time in quotes, such as "
                    f"'2026-11-30T04:00:00Z', not {str(item.value)[:60]!r}."
                )
            since = bound if since is None else max(since, bound)
        elif _mentions(item, names):
            raise CursorError(
                f"the cursor field {cursor_field} may only appear as "
                f"'{cursor_field} >= <ISO-8601>', alone or joined to the rest with AND."
            )
        else:
            rest.append(item)
    if not rest:
        return since, None
    return since, rest[0] if len(rest) == 1 else And(tuple(rest))


def at_or_after(value, since: datetime | None, *, day: bool = False) -> bool:
    """Whether a record's cursor value is at or after ``since`` (None: every record is). With
    ``day``, day-granular values compare by UTC day (a record of the cursor's day comes back)."""
    if since is None:
        return True
    moment = instant(value)
    if moment is None:
        return False
    return moment.date() >= since.astimezone(UTC).date() if day else moment >= since


def latest(*values: datetime | None) -> datetime | None:
    """The latest of the given bounds (None ones ignored)."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def day_windows(first: date, last: date, days: int = 1) -> list[tuple[date, date]]:
    """``first``..``last`` (inclusive) as consecutive windows of at most ``days`` days: the
    requests a vendor with a per-request date-range limit is asked."""
    if days < 1:
        raise ValueError("a window has at least one day")
    # By day number: no date past ``last`` is made (the day after 9999-12-31 does not exist).
    end = last.toordinal()
    return [
        (date.fromordinal(start), date.fromordinal(min(end, start + days - 1)))
        for start in range(first.toordinal(), end + 1, days)
    ]


__all__ = [
    "CursorError",
    "at_or_after",
    "cursor_text",
    "day_windows",
    "epoch_seconds",
    "instant",
    "latest",
    "parse_iso",
    "split_cursor",
]
