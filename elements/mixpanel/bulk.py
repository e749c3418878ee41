"""Bulk download sources for Mixpanel's objects (contract §6).

- ``activities``: the raw export (reference §7), one UTC day per request, read line by line
  (``VendorClient.stream_lines`` gunzips and splits); a line that is not a JSON object is a
  failed record, not a fatal error; the ``terminated early`` line ends a day's stream short,
  which is an error to retry.
  Checkpoint: the day and how many lines of it are already written.
- ``users``: engage pages with ``session_id``; checkpoint: the next page and the session.
- ``service-accounts``: one page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from elements.framework.bulk import BulkQuery, BulkQueryError, Page
from elements.framework.ceql import CeqlError
from elements.framework.definition import Call
from elements.framework.mapping import stable_id
from elements.framework.vendor import VendorError
from elements.mixpanel import service_accounts
from elements.mixpanel.profiles import engage, with_id
from elements.mixpanel.selector_language import RAW_QUERY_FIELD, expr_to_selector
from elements.mixpanel.vendor import project_query
from platform_core.conf import platform_settings

ENGAGE_PAGE_SIZE = 1000
TERMINATED = b"terminated early"
DEFAULT_DAYS = 30
_SCAN = json.JSONDecoder().scan_once


class ExportTerminatedEarly(VendorError):
    status_code = 502
    default_detail = "Mixpanel ended the export stream early (terminated early)."


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


def _days(query: BulkQuery) -> list[date]:
    end = (query.date_to or datetime.now(UTC)).astimezone(UTC).date()
    start = (
        query.date_from.astimezone(UTC).date()
        if query.date_from
        else end - timedelta(days=DEFAULT_DAYS - 1)
    )
    if start > end:
        raise BulkQueryError("'from' is later than 'to'.")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def event_id(record: dict) -> str:
    """An event's primary key: its ``$insert_id`` (Mixpanel deduplicates on it), else a hash of
    what identifies it, the same every time the event is read."""
    properties = record.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    insert_id = properties.get("$insert_id")
    if isinstance(insert_id, str) and insert_id:
        return insert_id
    return stable_id(record.get("event"), properties.get("time"), properties.get("distinct_id"))


def _with_event_id(line: bytes, record: dict) -> bytes:
    """The export line with a top-level ``id`` first, spliced in without re-serialising."""
    if "id" in record:
        return line
    head = b'{"id":' + json.dumps(event_id(record)).encode()
    return head + (b"}" if not record else b"," + line[1:])


class ActivitiesSource:
    def validate(self, query: BulkQuery) -> None:
        _selector(query)
        _days(query)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        selector = _selector(query)
        days = _days(query)
        start_day = checkpoint.get("day") if checkpoint else None
        skip = checkpoint.get("line", 0) if checkpoint else 0
        for index, day in enumerate(days):
            if start_day and day.isoformat() < start_day:
                continue
            to_skip = skip if start_day == day.isoformat() else 0
            yield from self._day(call, day, selector, to_skip, (index, len(days)))

    def _day(self, call: Call, day: date, selector, skip: int, progress) -> Iterator[Page]:
        params = {"from_date": day.isoformat(), "to_date": day.isoformat()}
        if selector:
            params["where"] = selector
        lines = call.vendor.stream_lines(
            "GET",
            "data",
            "/api/2.0/export",
            query={**params, **project_query(call.configuration)},
            gzip=platform_settings.BULK_EXPORT_GZIP,
        )
        position = 0
        page = Page()
        raw, failed = page.raw, page.failed
        keys: dict[str, None] = {}  # insertion-ordered set
        count = 0
        scan = _SCAN
        page_records = platform_settings.BULK_EXPORT_PAGE_RECORDS
        with lines:
            for line in lines:
                line = line.strip()
                if not line:
                    continue
                if line == TERMINATED:
                    raise ExportTerminatedEarly(provider_message="terminated early")
                position += 1
                if position <= skip:
                    continue
                if count >= page_records:
                    # A full page goes out once another record follows: the day's last page
                    # instead carries the next day's checkpoint (one commit less).
                    page.checkpoint = {"day": day.isoformat(), "line": position - 1}
                    page.progress = progress
                    page.keys = list(keys)
                    yield page
                    page = Page()
                    raw, failed = page.raw, page.failed
                    keys = {}
                    count = 0
                try:
                    # scan_once is json.loads without its per-call wrappers.
                    text = line.decode("utf-8")
                    record, end = scan(text, 0)
                    if end != len(text):
                        raise ValueError("extra data after the record")
                    if type(record) is not dict:
                        raise ValueError("not a JSON object")
                except (ValueError, StopIteration) as exc:
                    reason = str(exc) if isinstance(exc, ValueError) else "not JSON"
                    failed.append(
                        {
                            "position": f"{day.isoformat()}#{position}",
                            "error": f"unreadable record: {reason}"[:200],
                            "raw": line[:500].decode("utf-8", "replace"),
                        }
                    )
                else:
                    # The parsed record is dropped: the page carries the raw line and the keys
                    # (see Page).
                    if "id" not in keys:
                        keys["id"] = None
                    for key in record:
                        if key not in keys:
                            keys[key] = None
                    raw.append(_with_event_id(line, record))
                count += 1
        next_day = (day + timedelta(days=1)).isoformat()
        page.checkpoint = {"day": next_day, "line": 0}
        page.progress = (progress[0] + 1, progress[1])
        page.keys = list(keys)
        yield page


class UsersSource:
    def validate(self, query: BulkQuery) -> None:
        _selector(query)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        selector = _selector(query)
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
            yield Page(
                records=records,
                raw=[json.dumps(r, separators=(",", ":")).encode() for r in records],
                checkpoint={"page": page_number, "session_id": session_id},
                done=not more,
            )
            if not more:
                return


class ServiceAccountsSource:
    def validate(self, query: BulkQuery) -> None:
        if query.where is not None:
            raise BulkQueryError("service-accounts cannot be filtered.")

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        self.validate(query)
        accounts = service_accounts.list_accounts(call).body
        yield Page(
            records=accounts,
            raw=[json.dumps(a, separators=(",", ":")).encode() for a in accounts],
            checkpoint={"done": True},
            done=True,
        )
