"""Bulk download sources for Mixpanel's objects (contract §6).

- ``activities``: the raw export (reference §7), one UTC day per request, read line by line from
  the (gzip) stream; a line that is not a JSON object is a failed record, not a fatal error; the
  ``terminated early`` line ends a day's stream short, which is an error to retry.
  Checkpoint: the day and how many lines of it are already written.
- ``users``: engage pages with ``session_id``; checkpoint: the next page and the session.
- ``service-accounts``: one page.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from elements.framework.bulk import BulkQuery, BulkQueryError, Page
from elements.framework.ceql import CeqlError
from elements.framework.definition import Call
from elements.framework.vendor import VendorError, VendorUnreachable
from elements.mixpanel import service_accounts
from elements.mixpanel.profiles import engage
from elements.mixpanel.selectors import RAW_QUERY_FIELD, expr_to_selector
from elements.mixpanel.vendor import auth_header, project_query

EXPORT_PAGE_RECORDS = 5000
ENGAGE_PAGE_SIZE = 1000
TERMINATED = b"terminated early"
DEFAULT_DAYS = 30


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


def _lines(response) -> Iterator[bytes]:
    """Lines of a streamed body, gunzipped when the vendor compressed it."""
    gzipped = response.headers.get("Content-Encoding", "").lower() == "gzip"
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    pending = b""
    for chunk in response.stream(256 * 1024, decode_content=False):
        if decompressor is not None:
            chunk = decompressor.decompress(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if decompressor is not None:
        pending += decompressor.flush()
    if pending:
        yield pending


class ActivitiesSource:
    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        selector = _selector(query)
        days = _days(query)
        start_day = checkpoint.get("day") if checkpoint else None
        skip = checkpoint.get("line", 0) if checkpoint else 0
        for day in days:
            if start_day and day.isoformat() < start_day:
                continue
            to_skip = skip if start_day == day.isoformat() else 0
            yield from self._day(call, day, selector, to_skip)

    def _day(self, call: Call, day: date, selector, skip: int) -> Iterator[Page]:
        params = {"from_date": day.isoformat(), "to_date": day.isoformat()}
        if selector:
            params["where"] = selector
        response = call.vendor.stream(
            "GET",
            "data",
            "/api/2.0/export",
            query={**params, **project_query(call.configuration)},
            auth=auth_header(call.configuration),
        )
        position = 0
        page = Page()
        try:
            for line in _lines(response):
                line = line.strip()
                if not line:
                    continue
                if line == TERMINATED:
                    raise ExportTerminatedEarly(provider_message="terminated early")
                position += 1
                if position <= skip:
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    page.failed.append(
                        {
                            "position": f"{day.isoformat()}#{position}",
                            "error": f"unreadable record: {exc}"[:200],
                            "raw": line[:500].decode("utf-8", "replace"),
                        }
                    )
                else:
                    page.records.append(record)
                    page.raw.append(line)
                if len(page.records) + len(page.failed) >= EXPORT_PAGE_RECORDS:
                    page.checkpoint = {"day": day.isoformat(), "line": position}
                    yield page
                    page = Page()
        except (OSError, ValueError) as exc:  # connection cut or body cut mid-stream
            if isinstance(exc, VendorError):
                raise
            raise VendorUnreachable("The export stream broke off.") from exc
        finally:
            response.release_conn()
        next_day = (day + timedelta(days=1)).isoformat()
        page.checkpoint = {"day": next_day, "line": 0}
        yield page


class UsersSource:
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
            records = body["results"]
            total = body.get("total")
            more = (
                total > (page_number + 1) * ENGAGE_PAGE_SIZE
                if isinstance(total, int)
                else len(records) >= ENGAGE_PAGE_SIZE
            )
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
    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        if query.where is not None:
            raise BulkQueryError("service-accounts cannot be filtered.")
        accounts = service_accounts.list_accounts(call).body
        yield Page(
            records=accounts,
            raw=[json.dumps(a, separators=(",", ":")).encode() for a in accounts],
            checkpoint={"done": True},
            done=True,
        )
