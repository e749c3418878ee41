"""A completed job's result as the caller asked for it, streamed part by part (never the whole
result in memory): a JSON array, NDJSON, or CSV with a header row of the top-level keys seen
while the job ran and nested values as JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from bulk import storage

JSON = "application/json"
NDJSON = "application/x-ndjson"
JSONL = "application/jsonl"
CSV = "text/csv"
OFFERED = (JSON, NDJSON, JSONL, CSV)
_WILDCARDS = {"*/*": JSON, "application/*": JSON, "text/*": CSV}
CSV_ROWS_PER_CHUNK = 2000


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with for an ``Accept`` header; None when none can be made."""
    if not accept or not accept.strip():
        return JSON
    best = None
    for index, item in enumerate(accept.split(",")):
        pieces = item.split(";")
        media = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in OFFERED:
            choice, specific = media, 1
        elif media in _WILDCARDS:
            choice, specific = _WILDCARDS[media], 0
        else:
            continue
        rank = (quality, specific, -index)
        if best is None or rank > best[0]:
            best = (rank, choice)
    return best[1] if best else None


Parts = Iterable[storage.StoredPart]  # in order

# Each part is read and verified whole before any of its bytes is yielded; a part that fails
# (storage.PartRefused) raises out of the stream, which aborts the response: the server never
# finishes the body, so the client sees a broken download, not a short one. The views verify
# the first part before the response starts, so a refused result is usually an error answer.


def verify_first_part(parts: list[storage.StoredPart]) -> None:
    """Read and verify the first part now, before the response starts: a result that is
    refused from its first part is an error answer rather than a broken stream. Raises
    storage.PartUnavailable."""
    if parts:
        storage.part_data(parts[0])


def ndjson_stream(parts: Parts) -> Iterator[bytes]:
    for part in parts:
        yield from storage.part_chunks(part)


def json_array_stream(parts: Parts) -> Iterator[bytes]:
    """``[`` + the records separated by ``,`` + ``]``. Lines never contain a raw newline (JSON
    escapes it), so each newline becomes a separator; the last one closes the array."""
    yield b"["
    held = b""
    for chunk in ndjson_stream(parts):
        if held:
            yield held
        held = chunk.replace(b"\n", b",\n")
    if held:
        yield held[:-2] + b"\n"  # every part ends with a newline: drop the last comma
    yield b"]\n"


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def csv_stream(parts: Parts, header: list[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    rows = 0
    for part in parts:
        for line in storage.part_lines(part):
            record = json.loads(line)
            writer.writerow([cell(record.get(key)) for key in header])
            rows += 1
            if rows % CSV_ROWS_PER_CHUNK == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue().encode()
