"""The dates and instants callers give (``from``/``to`` of the usage log and of bulk jobs, a bulk
query's cursor condition), read in this one place.

ISO-8601, a date or a date-time, without a zone read as UTC, returned as an aware UTC datetime.
A value whose UTC form is outside years 1 to 9999 is refused rather than left to overflow later
(Python's date arithmetic raises, PostgreSQL refuses the literal): a 400, never a 500. So is an
offset beyond ±14:00, which no time zone has (PostgreSQL refuses one past ±15:59).
"""

from datetime import UTC, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime

from platform_core.exceptions import ValidationFailed

MAX_OFFSET = timedelta(hours=14)
EXPECTED = "must be an ISO-8601 date or date-time"
IN_RANGE = "must fall between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once in UTC"
OFFSET = "must have a UTC offset between -14:00 and +14:00"


class OutOfRange(ValueError):
    """ISO-8601, but not an instant the platform accepts; the message says why."""


def parse_instant(text: str) -> datetime | None:
    """``text`` as an aware UTC datetime (no zone: UTC; a date: its midnight); None when it is
    not an ISO-8601 date or date-time. Raises OutOfRange (above)."""
    text = text.strip()
    try:
        value = parse_datetime(text)
        if value is None and (day := parse_date(text)) is not None:
            value = datetime.combine(day, time.min)
    except ValueError:  # well-formed but no real moment: 2024-02-30, an offset of 25 hours
        return None
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if abs(value.utcoffset()) > MAX_OFFSET:
        raise OutOfRange(OFFSET)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise OutOfRange(IN_RANGE) from None


def instant_param(raw, name: str) -> datetime | None:
    """A request's date or date-time parameter ``name`` (None when absent), or a 400 naming it."""
    if raw in (None, ""):
        return None
    try:
        value = parse_instant(raw) if isinstance(raw, str) else None
    except OutOfRange as exc:
        raise ValidationFailed(
            f"{name} is out of range: {raw[:60]!r} {exc}.",
            errors=[{"field": name, "message": str(exc)}],
        ) from None
    if value is None:
        shown = f": {raw[:60]!r}" if isinstance(raw, str) else ""
        raise ValidationFailed(
            f"{name} is not an ISO-8601 date or date-time{shown}.",
            errors=[{"field": name, "message": EXPECTED}],
        )
    return value
