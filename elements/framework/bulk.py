"""What an element gives the bulk job runner: pages of records, each with a checkpoint.

The runner (``bulk/``) knows nothing about any vendor. It asks a ``BulkSource`` for pages,
starting from the last checkpoint it committed (``None`` for a new job); after durably writing a
page's records it commits that page's ``checkpoint``. A source resumed from a checkpoint yields
exactly the records after it, so a job that dies and restarts has every record exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from elements.framework.definition import Call


@dataclass(frozen=True)
class BulkQuery:
    object_name: str
    where: Any = None  # a parsed CEQL expression (elements.framework.ceql), or None
    where_text: str | None = None  # the CEQL text as the caller wrote it
    date_from: datetime | None = None
    date_to: datetime | None = None
    # Incremental sync: only records whose cursor is at or after this instant (aware, UTC). The
    # later of the ``where``'s ``<cursorField> >= '...'`` and ``from``; that condition is no
    # longer in ``where`` (elements/framework/incremental.py). A source asks its vendor for as
    # little as it can from it, and filters exactly.
    since: datetime | None = None


@dataclass
class Page:
    """Records to append, as JSON text lines (``raw``) and parsed (``records``), plus the
    records that could not be read, and where to resume after this page (None: finished).

    A source may leave ``records`` empty and give the top-level ``keys`` of its ``raw`` records
    instead: keeping millions of parsed export records alive only for the runner to look at
    their keys is the most expensive step of a bulk job. The runner counts ``raw``.
    """

    records: list[dict] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # one serialized JSON object per record
    failed: list[dict] = field(default_factory=list)  # {"position", "error", "raw"}
    checkpoint: dict | None = None
    done: bool = False
    # Optional progress after this page, in the source's own unit (e.g. days): (done, total).
    progress: tuple[int, int] | None = None
    # The records' top-level keys, in order of first appearance, when ``records`` is empty.
    keys: list[str] | None = None
    # In place of ``raw``: the records as NDJSON text in pieces that each end with a newline (a
    # vendor's block of lines passed on whole, without splitting it and joining it again), and
    # how many records the pieces hold.
    ndjson: list[bytes] | None = None
    ndjson_records: int = 0
    # Each written record's cursor value, in ``raw``'s order (None where a record has none), in
    # any form ``incremental.instant`` reads (epoch seconds, an ISO text, a datetime): the
    # runner keeps the highest as the job's ``cursor``.
    cursors: list | None = None

    def lines(self) -> list[bytes]:
        """The records as serialized JSON objects, one each, whichever way the page holds them."""
        if self.ndjson is None:
            return self.raw
        return b"".join(self.ndjson).split(b"\n")[:-1]


class BulkSource(Protocol):
    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]: ...

    # Optional: raise BulkQueryError for a query that can never run, before any vendor call
    # (the platform calls it when the job is submitted, so the caller gets a 400).
    # def validate(self, query: BulkQuery) -> None: ...


class BulkQueryError(ValueError):
    """The query names something the object cannot do (shown to the caller as a 400, naming
    ``field``, the request parameter at fault)."""

    def __init__(self, message: str, *, field: str = "q"):
        super().__init__(message)
        self.field = field
