"""One UTC day of Mixpanel's raw export (reference §7) read into bulk pages, block by block.

The records pass through as the vendor's bytes, with the record's ``id`` (its ``$insert_id``,
see ``event_id``) spliced in first: nothing is re-encoded. Of each record only
``properties.$insert_id`` (the day's dedupe) and ``properties.time`` (the ``since`` filter and
the job's cursor) are read, by a typed ``msgspec`` decode that skips everything else in C, a
whole block of lines per call (``Decoder.decode_lines``). The block is cut at its records'
boundaries by one split (``_record_bodies``, which also shows that its lines are its records);
when every record is new and at or after ``since`` (the usual case), the dedupe is three set
operations in C and the records go to the page with their ids in one join (``Page.ndjson``);
a page's end or the checkpoint of a resumed job falls between two records.

A block that does not decode as a whole, or whose lines need more care, is read line by line
(``_lines_one_by_one``), with the same rules as ever:

- a blank line is skipped (it counts as no line for the checkpoint);
- the ``terminated early`` line ends the day's stream short: an error to retry;
- a line that is not a JSON object (or not UTF-8) is a failed record, the others are kept;
- a record with other top-level keys than ``event`` and ``properties``, or an ``$insert_id``
  that is not a text, is read whole (the json module), as before.

Checkpoint: the day and how many lines of it are read. A page ends after ``page_records`` lines
or once it holds ``page_bytes`` bytes of records (looked at between blocks: a page can pass it
by one block, at most 4 MiB), and only once another line follows (the day's last page carries
the next day's checkpoint instead: one commit less).
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from elements.framework.bulk import Page
from elements.framework.incremental import epoch_seconds
from elements.framework.mapping import stable_id
from elements.framework.vendor import VendorError

TERMINATED = b"terminated early"
_SCAN = json.JSONDecoder().scan_once
_KNOWN_KEYS = ("id", "event", "properties")  # a page's keys: the id first, as it is written


class ExportTerminatedEarly(VendorError):
    status_code = 502
    default_detail = "Mixpanel ended the export stream early (terminated early)."


# gc=False: decoded records hold no cycles, and untracked they cost the cyclic GC nothing (a
# block is thousands of them).
class _Properties(msgspec.Struct, rename={"insert_id": "$insert_id"}, gc=False):
    insert_id: str | None = None
    time: Any = None


# The record as Mixpanel exports it. Another top-level key fails the decode (and the record is
# read whole): the page's ``keys`` (the CSV columns) must name every key.
class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    event: Any = msgspec.UNSET
    properties: _Properties = msgspec.field(default_factory=_Properties)


_DECODER = msgspec.json.Decoder(_Event)
_encode = msgspec.json.encode


def event_id(record: dict) -> str:
    """An event's primary key: its ``$insert_id`` (Mixpanel deduplicates on it), else a hash of
    what identifies it, the same every time the event is read."""
    properties = record.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    insert_id = properties.get("$insert_id")
    if isinstance(insert_id, str) and insert_id:
        return insert_id
    return stable_id(record.get("event"), properties.get("time"), properties.get("distinct_id"))


def content_lines(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The export's lines that hold something: stripped, blank lines passed over; the
    ``terminated early`` line (the day's stream ended short) raised as ExportTerminatedEarly."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line == TERMINATED:
            raise ExportTerminatedEarly(provider_message="terminated early")
        yield line


def _with_event_id(line: bytes, record: dict) -> bytes:
    """The export line with a top-level ``id`` first, spliced in without re-serialising."""
    if "id" in record:
        return line
    head = b'{"id":' + _encode(event_id(record))
    return head + (b"}" if not record else b"," + line[1:])


def _with_ids(bodies: list[bytes], ids: list[str], *, escaped: bool) -> bytes:
    """Whole lines, one record each, from the records' bodies (``_record_bodies``) with
    ``{"id":<id>,`` in place of each record's ``{``, in a few passes in C: the heads made by one
    join, interleaved with the bodies, joined once. The ids are non-empty texts. ``escaped``:
    whether the block holds a backslash; without one, no text in it (ids included) has a
    character that JSON escapes, as a JSON text can only hold such a character escaped."""
    text = '",\x00}\n{"id":"'.join(ids)
    if escaped and ('"' in text or "\\" in text or not text.isprintable()):
        heads = [b'}\n{"id":' + _encode(insert_id) + b"," for insert_id in ids]
        heads[0] = heads[0][2:]
    else:
        heads = ('{"id":"' + text + '",').encode().split(b"\x00")
    out = [b"}\n"] * (2 * len(ids) + 1)
    out[0:-1:2] = heads
    out[1:-1:2] = bodies
    return b"".join(out)


def _at_or_after(time_value, since: float | None) -> bool:
    """Whether an event's time is at or after ``since`` (epoch seconds; None: every event is)."""
    if since is None:
        return True
    seconds = epoch_seconds(time_value)
    return seconds is not None and seconds >= since


def _all_at_or_after(times: list, since: float) -> bool:
    """Whether every time is epoch seconds at or after ``since``, without a loop in Python: the
    lowest is, and the highest is still in seconds (not milliseconds). False also when some are
    not numbers (then each is looked at)."""
    try:
        low, high = min(times), max(times)
    except (TypeError, ValueError):  # None or a text among numbers; no times
        return False
    return (
        type(low) in (int, float)
        and type(high) in (int, float)
        and low >= since
        and epoch_seconds(high) == high
    )


def _record_bodies(block: bytes, records: int) -> list[bytes] | None:
    """Each record of the block without its braces, when the block's lines are its records, one
    each (else None). ``decode_lines`` skips blank lines and reads JSON values wherever the
    newlines are: a record over two lines, or two on one line, would shift every record after
    it against its line. Here every newline but the last sits between ``}`` and ``{``, which
    inside a JSON value is a syntax error (and strings hold no raw newline): each newline ends
    a record. One split finds those newlines and cuts the records."""
    if not (
        records
        and block.startswith(b"{")
        and block.endswith(b"}\n")
        and block.count(b"\n") == records
    ):
        return None
    bodies = block.split(b"}\n{")
    if len(bodies) != records:
        return None
    bodies[0] = bodies[0][1:]
    bodies[-1] = bodies[-1][:-2]
    return bodies


_UTF8_STEP = 32 * 1024


def _utf8(data: bytes) -> bool:
    # msgspec reads the bytes of strings it skips without checking them. Decoded a step at a
    # time: the text of a whole block (up to four bytes a character) would be a fresh buffer
    # of several MB each time, which the allocator maps and unmaps (bulk/memory.py).
    if data.isascii():
        return True
    decode = codecs.getincrementaldecoder("utf-8")().decode  # a character may span two steps
    view = memoryview(data)
    try:
        for start in range(0, len(data), _UTF8_STEP):
            decode(view[start : start + _UTF8_STEP])
        decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class DayReader:
    """The pages of one day's export (``blocks``: the vendor's blocks of whole lines).

    ``skip``: lines already committed (a resumed job): only their ``$insert_id`` matters now,
    to rebuild the day's dedupe set. ``since``: epoch seconds (the day of ``since`` only)."""

    def __init__(
        self,
        day: str,
        next_day: str,
        *,
        skip: int,
        since: float | None,
        progress: tuple[int, int],
        page_records: int,
        page_bytes: int,
    ):
        self.day = day
        self.next_day = next_day
        self.skip = skip
        self.since = since
        self.progress = progress
        self.page_records = max(1, page_records)
        self.page_bytes = page_bytes
        self.position = 0  # lines of the day read
        self.seen: set[str] = set()  # this day's $insert_ids written (or before the checkpoint)
        self._new_page()

    def _new_page(self) -> None:
        self.page = Page(cursors=[], ndjson=[])
        self.keys: dict[str, None] = {}  # insertion-ordered set
        self.count = 0  # lines in this page (kept, filtered, repeated or failed)
        self.size = 0  # bytes of the page's records

    def _full(self) -> bool:
        return self.count >= self.page_records or self.size >= self.page_bytes

    def _page_out(self, checkpoint: dict, progress: tuple[int, int]) -> Page:
        page = self.page
        page.checkpoint = checkpoint
        page.progress = progress
        page.keys = list(self.keys)
        self._new_page()
        return page

    def _full_page(self) -> Page:
        return self._page_out({"day": self.day, "line": self.position}, self.progress)

    def pages(self, blocks) -> Iterator[Page]:
        for block in blocks:
            yield from self._block(block)
        yield self._page_out(
            {"day": self.next_day, "line": 0}, (self.progress[0] + 1, self.progress[1])
        )

    # --- a block at a time -------------------------------------------------------------------

    def _block(self, block: bytes) -> Iterator[Page]:
        records = bodies = None
        if b"\r" not in block and _utf8(block):
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                records = _DECODER.decode_lines(block)
        if records is not None:
            bodies = _record_bodies(block, len(records))
        if bodies is None:
            lines = block.split(b"\n")
            lines.pop()  # the block ends with a newline
            yield from self._lines_one_by_one(lines)
            return
        escaped = b"\\" in block
        start, end = 0, len(records)
        if self.position < self.skip:
            start = min(end, self.skip - self.position)
            for record in records[:start]:
                self._remember(record.properties)
            self.position += start
        while start < end:
            if self._full():
                yield self._full_page()
            stop = min(end, start + self.page_records - self.count)
            self._segment(bodies[start:stop], records[start:stop], escaped)
            start = stop

    def _segment(self, bodies: list[bytes], records: list, escaped: bool) -> None:
        """Records that fit in the page (their bodies: ``_record_bodies``): kept unless filtered
        or repeated. When every one is kept, they go to the page in one piece."""
        self.position += len(records)
        self.count += len(records)
        props = [record.properties for record in records]
        times = [p.time for p in props]
        if self.since is None or _all_at_or_after(times, self.since):
            ids = [p.insert_id for p in props]
            fresh = set(ids)
            if (
                len(fresh) == len(ids)
                and None not in fresh
                and "" not in fresh
                and fresh.isdisjoint(self.seen)
            ):
                self.seen |= fresh
                if len(self.keys) < len(_KNOWN_KEYS):
                    self._keys_of((b"{" + body + b"}" for body in bodies), records)
                data = _with_ids(bodies, ids, escaped=escaped)
                self.page.ndjson.append(data)
                self.page.ndjson_records += len(records)
                self.page.cursors += times
                self.size += len(data)
                return
        for body, record in zip(bodies, records, strict=True):
            self._keep(b"{" + body + b"}", record, record.properties)

    def _keys_of(self, lines: Iterable[bytes], records: list) -> None:
        """The page's keys from records that may add one: read whole, in their own order, after
        the ``id`` every written record starts with."""
        self.keys.setdefault("id", None)
        for line, record in zip(lines, records, strict=False):
            if record.event is msgspec.UNSET and "properties" in self.keys:
                continue
            try:
                record_keys = _SCAN(line.decode("utf-8"), 0)[0]
            except (ValueError, StopIteration, RecursionError):
                continue  # msgspec read it: it is JSON; keep its known keys at least
            for key in record_keys:
                self.keys.setdefault(key, None)
            if len(self.keys) == len(_KNOWN_KEYS):
                return

    def _keep(self, line: bytes, record, props) -> None:
        """One decoded record (an ``_Event``, or a dict read whole), kept unless filtered or
        already written today."""
        time_value = props.time
        if self.since is not None and not _at_or_after(time_value, self.since):
            return
        insert_id = props.insert_id
        if type(insert_id) is str:
            if insert_id in self.seen:
                return  # the export repeated an event
            self.seen.add(insert_id)
        if type(record) is dict:
            self.keys.setdefault("id", None)
            for key in record:
                self.keys.setdefault(key, None)
            line = _with_event_id(line, record)
        else:
            if len(self.keys) < len(_KNOWN_KEYS):
                self._keys_of([line], [record])
            if type(insert_id) is str and insert_id:
                line = b'{"id":' + _encode(insert_id) + b"," + line[1:]
            else:  # read whole for the id's other parts (Mixpanel's events all have one)
                try:
                    whole = _SCAN(line.decode("utf-8"), 0)[0]
                except (ValueError, StopIteration, RecursionError):  # msgspec read it, json not
                    event = None if record.event is msgspec.UNSET else record.event
                    whole = {"event": event, "properties": {"time": props.time}}
                line = _with_event_id(line, whole)
        self.page.ndjson.append(line + b"\n")
        self.page.ndjson_records += 1
        # As Mixpanel sends it (epoch seconds): only the page's highest is read.
        self.page.cursors.append(time_value)
        self.size += len(line) + 1

    def _remember(self, props) -> None:
        """A line before the checkpoint: its $insert_id was written (if it passed ``since``)."""
        if type(props.insert_id) is str and _at_or_after(props.time, self.since):
            self.seen.add(props.insert_id)

    # --- a line at a time --------------------------------------------------------------------

    def _lines_one_by_one(self, lines: list[bytes]) -> Iterator[Page]:
        for line in content_lines(lines):
            position = self.position + 1
            if position <= self.skip:
                self.position = position
                decoded = _decode_line(line)
                if not isinstance(decoded, str):
                    self._remember(decoded[1])
                continue
            if self._full():
                yield self._full_page()  # checkpoint: the lines before this one
            self.position = position
            self.count += 1
            decoded = _decode_line(line)
            if isinstance(decoded, str):
                self.page.failed.append(
                    {
                        "position": f"{self.day}#{self.position}",
                        "error": f"unreadable record: {decoded}"[:200],
                        "raw": line[:500].decode("utf-8", "replace"),
                    }
                )
            else:
                self._keep(line, *decoded)


class _DictProperties:
    """A whole-read record's ``properties``, as ``_keep`` reads them."""

    __slots__ = ("insert_id", "time")

    def __init__(self, props):
        if type(props) is not dict:
            props = {}
        self.insert_id = props.get("$insert_id")
        self.time = props.get("time")


def _decode_line(line: bytes):
    """(record, properties) of one line, or why it is unreadable (a text)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return str(exc)
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
        record = _DECODER.decode(line)
        return record, record.properties
    try:
        # The json module's own reading, as before: scan_once is json.loads without its
        # per-call wrappers.
        record, end = _SCAN(text, 0)
        if end != len(text):
            raise ValueError("extra data after the record")
        if type(record) is not dict:
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return str(exc)
    except StopIteration:
        return "not JSON"
    return record, _DictProperties(record.get("properties"))
