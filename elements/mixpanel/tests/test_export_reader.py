"""The export's day reader: blocks of lines decoded at once, and the line-by-line fallback.

The reader is fed blocks as ``LineStream.blocks`` gives them (whole lines, each ending with a
newline); the export itself over HTTP is covered by tests/test_bulk_*.py."""

import json

import pytest

from elements.framework.mapping import stable_id
from elements.mixpanel.export_reader import DayReader, ExportTerminatedEarly

DAY, NEXT_DAY = "2024-01-01", "2024-01-02"
T0 = 1704067200


def event(n: int, insert_id: str | None = None, *, no_id: bool = False, **extra) -> bytes:
    props = {"time": T0 + n, "distinct_id": f"u{n}", "city": "São Paulo", "n": n}
    if not no_id:
        props["$insert_id"] = insert_id or f"id-{n}"
    return json.dumps(
        {"event": "Page View", "properties": props, **extra}, separators=(",", ":")
    ).encode()


def block(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def read(blocks, *, skip=0, since=None, page_records=1000, page_bytes=1 << 30):
    reader = DayReader(
        DAY,
        NEXT_DAY,
        skip=skip,
        since=since,
        progress=(0, 1),
        page_records=page_records,
        page_bytes=page_bytes,
    )
    return list(reader.pages(blocks))


def lines_of(page) -> list[bytes]:
    assert page.ndjson_records == len(b"".join(page.ndjson).split(b"\n")) - 1
    return b"".join(page.ndjson).split(b"\n")[:-1]


def written(line: bytes) -> bytes:
    """A line as the job writes it: the event's id first (its $insert_id, else a hash of what
    identifies it), unless it has an id of its own."""
    record = json.loads(line)
    if "id" in record:
        return line
    props = record.get("properties") or {}
    insert_id = props.get("$insert_id")
    if not (isinstance(insert_id, str) and insert_id):
        insert_id = stable_id(record.get("event"), props.get("time"), props.get("distinct_id"))
    return b'{"id":' + json.dumps(insert_id, ensure_ascii=False).encode() + b"," + line[1:]


def w(lines: list[bytes]) -> list[bytes]:
    return [written(line) for line in lines]


def kept(pages) -> list[bytes]:
    return [line for page in pages for line in lines_of(page)]


def failed(pages) -> list[dict]:
    return [f for page in pages for f in page.failed]


def test_a_block_of_good_records_passes_through_as_the_vendor_s_bytes():
    lines = [event(n) for n in range(50)]
    pages = read([block(*lines[:20]), block(*lines[20:])])
    # Whole blocks, not split into lines: each record's id spliced in.
    assert pages[0].ndjson == [block(*w(lines[:20])), block(*w(lines[20:]))]
    assert kept(pages) == w(lines)
    assert len(pages) == 1 and pages[0].checkpoint == {"day": NEXT_DAY, "line": 0}
    assert pages[0].cursors == [T0 + n for n in range(50)]
    assert pages[0].keys == ["id", "event", "properties"]
    assert pages[0].progress == (1, 1) and not failed(pages)


def test_a_block_with_a_bad_line_keeps_its_good_records_and_fails_that_one():
    lines = [event(n) for n in range(10)]
    bad = b'{"event":"Page View","properties":{"time":'
    pages = read([block(*lines[:4], bad, *lines[4:])])
    assert kept(pages) == w(lines)
    [failure] = failed(pages)
    assert failure["position"] == f"{DAY}#5"
    assert failure["error"].startswith("unreadable record:")
    assert failure["raw"] == bad.decode()
    # The failed line counts as a line of the day: the next day starts after 11 lines.
    assert pages[-1].checkpoint == {"day": NEXT_DAY, "line": 0}


def test_lines_that_are_not_json_objects_or_not_utf8_fail_and_the_others_stay():
    good = [event(n) for n in range(3)]
    not_utf8 = b'{"event":"x","properties":{"city":"\xff"}}'
    pages = read([block(good[0], b"[1,2]", not_utf8, good[1], b"garbage", good[2])])
    assert kept(pages) == w(good)
    assert [f["position"] for f in failed(pages)] == [f"{DAY}#2", f"{DAY}#3", f"{DAY}#5"]


def test_blank_lines_and_crlf_are_skipped_as_before():
    lines = [event(n) for n in range(4)]
    data = lines[0] + b"\r\n\n" + lines[1] + b"\n   \n" + block(*lines[2:])
    pages = read([data], page_records=2)
    assert kept(pages) == w(lines)
    # Blank lines are no lines: the first page ends after the first two records.
    assert pages[0].checkpoint == {"day": DAY, "line": 2}


def test_pages_end_after_page_records_lines_with_the_checkpoint_of_the_lines_read():
    lines = [event(n) for n in range(7)]
    pages = read([block(*lines[:5]), block(*lines[5:])], page_records=3)
    assert [lines_of(page) for page in pages] == [w(lines[0:3]), w(lines[3:6]), w(lines[6:])]
    assert [page.checkpoint for page in pages] == [
        {"day": DAY, "line": 3},
        {"day": DAY, "line": 6},
        {"day": NEXT_DAY, "line": 0},
    ]
    assert [page.keys for page in pages] == [["id", "event", "properties"]] * 3


def test_a_full_page_waits_for_another_line_so_the_day_s_last_page_carries_the_next_day():
    lines = [event(n) for n in range(6)]
    pages = read([block(*lines)], page_records=3)
    assert [page.checkpoint for page in pages] == [
        {"day": DAY, "line": 3},
        {"day": NEXT_DAY, "line": 0},
    ]


def test_pages_are_bounded_in_bytes_too():
    lines = [event(n) for n in range(6)]
    pages = read([block(line) for line in lines], page_bytes=2 * len(lines[0]))
    assert [page.ndjson_records for page in pages] == [2, 2, 2]
    assert kept(pages) == w(lines)


def test_a_repeated_insert_id_is_kept_once_in_a_block_and_across_blocks():
    first = [event(n) for n in range(5)]
    repeat_in_block = event(9, insert_id="id-2")
    repeat_later = event(10, insert_id="id-4")
    no_id = [event(20, no_id=True), event(21, no_id=True)]
    pages = read([block(*first, repeat_in_block), block(repeat_later, *no_id, event(30))])
    assert kept(pages) == w([*first, *no_id, event(30)])


def test_a_record_with_other_keys_is_read_whole_and_its_keys_are_the_page_s_columns():
    lines = [event(0), event(1, id="id-1"), event(2)]
    pages = read([block(*lines)])
    assert kept(pages) == w(lines)
    assert pages[0].keys == ["id", "event", "properties"]


def test_a_record_without_properties_is_kept_without_a_cursor():
    lines = [b'{"event":"bare"}', event(1)]
    pages = read([block(*lines)])
    assert kept(pages) == w(lines)
    assert pages[0].cursors == [None, T0 + 1]
    assert pages[0].keys == ["id", "event", "properties"]


def test_a_non_text_insert_id_is_kept_as_before():
    lines = [event(0), b'{"event":"x","properties":{"time":1704067300,"$insert_id":7}}']
    pages = read([block(*lines, lines[1])])
    assert kept(pages) == w([*lines, lines[1]])  # only text ids are deduplicated


def test_since_filters_on_the_event_time():
    lines = [event(n) for n in range(10)]
    pages = read([block(*lines)], since=T0 + 5)
    assert kept(pages) == w(lines[5:])


def test_a_resumed_day_skips_the_committed_lines_and_remembers_their_insert_ids():
    lines = [event(n) for n in range(6)]
    again = event(40, insert_id="id-1")
    # Resumed after 4 lines, in the middle of the first block.
    pages = read([block(*lines[:5]), block(lines[5], again)], skip=4)
    assert kept(pages) == w(lines[4:])
    # The same with the skipped part read line by line (a blank line in the block).
    pages = read([block(*lines[:2]) + b"\n" + block(*lines[2:5]), block(lines[5], again)], skip=4)
    assert kept(pages) == w(lines[4:])


def test_the_terminated_early_line_is_an_error_to_retry():
    with pytest.raises(ExportTerminatedEarly):
        read([block(event(0), event(1)), block(b"terminated early")])


def test_blocks_and_lines_one_by_one_read_the_same():
    lines = [event(n) for n in range(30)]
    lines[7] = event(7, insert_id="id-3")  # a repeat
    lines[12] = b"not json"
    lines[20] = event(20, extra_key=True)
    whole = read([block(*lines)], page_records=8)
    # A blank line in every block sends it line by line.
    one_by_one = read([b"\n" + block(line) for line in lines], page_records=8)
    for a, b in zip(whole, one_by_one, strict=True):
        assert (lines_of(a), a.cursors, a.keys, a.checkpoint, a.failed) == (
            lines_of(b),
            b.cursors,
            b.keys,
            b.checkpoint,
            b.failed,
        )


def test_since_with_times_in_milliseconds_is_still_exact():
    lines = [
        b'{"event":"x","properties":{"time":%d,"$insert_id":"m%d"}}' % ((T0 + n) * 1000, n)
        for n in range(10)
    ]
    pages = read([block(*lines)], since=T0 + 5)
    assert kept(pages) == w(lines[5:])


def test_since_before_every_event_of_a_block_keeps_them_all():
    lines = [event(n) for n in range(10)]
    assert kept(read([block(*lines)], since=T0)) == w(lines)
    assert kept(read([block(*lines)], since=T0 + 0.5)) == w(lines[1:])


def test_two_records_on_a_line_or_one_over_two_lines_fail_as_lines_and_shift_nothing():
    good = [event(n) for n in range(4)]
    two_on_a_line = event(10) + b" " + event(11)
    first_half, second_half = b'{"event":"x","properties":{"time":1,', b'"$insert_id":"y"}}'
    pages = read([block(good[0], two_on_a_line, good[1], first_half, second_half, *good[2:])])
    assert kept(pages) == w(good)
    assert [f["position"] for f in failed(pages)] == [f"{DAY}#2", f"{DAY}#4", f"{DAY}#5"]


@pytest.mark.parametrize(
    "ids",
    [["plain-1", "plain-2", "été"], ['q"uote', "back\\slash", "tab\there", "ok"]],
    ids=["texts as they are", "texts JSON escapes"],
)
def test_each_record_s_id_is_spliced_in_as_json_text(ids):
    lines = [
        json.dumps(
            {"event": "e", "properties": {"time": T0, "$insert_id": insert_id}},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        for insert_id in ids
    ]
    pages = read([block(*lines)])
    assert len(pages[0].ndjson) == 1  # the block's path, not line by line
    assert kept(pages) == w(lines)
    assert [json.loads(line)["id"] for line in kept(pages)] == ids


def test_a_backslash_elsewhere_in_the_block_keeps_plain_ids_plain():
    # Escapes in a property (not in the ids): the ids still need none.
    lines = [event(1), event(2).replace(b'"n":2', b'"n":"say \\"hi\\"\\n"'), event(3)]
    pages = read([block(*lines)])
    assert len(pages[0].ndjson) == 1
    assert kept(pages) == w(lines)
    assert [json.loads(line)["id"] for line in kept(pages)] == ["id-1", "id-2", "id-3"]


def test_empty_and_bare_records_among_good_ones_are_read_one_by_one():
    good = [event(n) for n in range(3)]
    pages = read([block(good[0], b"{}", good[1], b'{"event":"x"}', good[2])])
    assert kept(pages)[0] == written(good[0])
    assert json.loads(kept(pages)[1]) == {"id": stable_id(None, None, None)}
    assert kept(pages)[2] == written(good[1])
    assert json.loads(kept(pages)[3])["event"] == "x"
    assert kept(pages)[4] == written(good[2])


def test_utf8_is_checked_across_the_steps_of_a_large_block():
    from elements.mixpanel import export_reader

    step = export_reader._UTF8_STEP
    # A two-byte character cut by a step boundary is still one good character.
    padded = event(1).replace(b"S\\u00e3o Paulo", ("x" * (step - 120) + "é" * 40).encode())
    assert export_reader._utf8(block(padded) * 3)
    long = event(1).replace(b"S\\u00e3o Paulo", b"y" * (2 * step))
    bad = block(long) + b'{"event":"\xff"}\n'
    assert not export_reader._utf8(bad)
    pages = read([bad + block(event(2))])
    assert kept(pages) == w([long, event(2)])
    assert [f["position"] for f in failed(pages)] == [f"{DAY}#2"]
