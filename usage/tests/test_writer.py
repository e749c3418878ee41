"""The spool writer: records survive a dead process; one bad record does not block the rest."""

import json
from datetime import UTC, datetime

import pytest

from usage import writer
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def record(request_id: str, status: int = 200) -> dict:
    return {
        "request_id": request_id,
        "user_id": 1,
        "instance_id": 1,
        "element_key": "mixpanel",
        "operation": "ping",
        "method": "GET",
        "path": "/elements/api-v2/ping",
        "status": status,
        "vendor_status": None,
        "duration_ms": 1.0,
        "created_at": datetime.now(UTC).isoformat(),
        "request_body": None,
        "response_body": None,
    }


def test_flush_stores_everything_and_empties_the_spool(tmp_path):
    spool = writer.SpoolWriter(tmp_path, background=False)
    for i in range(3):
        spool.record(record(f"r{i}"))
    assert spool.path.stat().st_size > 0
    spool.flush()
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {"r0", "r1", "r2"}
    assert spool.path.stat().st_size == 0 and spool.pending == 0


def test_an_unstorable_record_is_dropped_alone(tmp_path):
    spool = writer.SpoolWriter(tmp_path, background=False)
    spool.record(record("good-1"))
    spool.record(record("bad", status=-1))  # violates the positive-integer check
    spool.record(record("good-2"))
    spool.flush()
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {"good-1", "good-2"}
    assert spool.pending == 0 and spool.path.stat().st_size == 0


def test_the_spool_of_a_dead_process_is_imported_once(tmp_path):
    dead = tmp_path / "999999999-deadbeef.jsonl"  # no such pid
    lines = [json.dumps(record(f"d{i}")) for i in range(2)] + ['{"cut short']
    dead.write_text("\n".join(lines) + "\n")
    spool = writer.SpoolWriter(tmp_path, background=False)
    spool._recover_dead_spools()
    spool._recover_dead_spools()  # nothing left to do, nothing stored twice
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["d0", "d1"]
    assert not dead.exists()


def test_both_insert_paths_store_the_same_values(tmp_path):
    """PostgreSQL stores batches through one JSON parameter, other databases through the ORM:
    the rows must come out the same either way."""
    from django.db import connection

    traced = record("orm", status=201)
    traced.update(
        vendor_status=502,
        duration_ms=12.345,
        request_body={"event": "Signup", "properties": {"n": 1, "nested": [1, "two", None]}},
        response_body=[{"unicode": "Zoë ✓ 日本"}],
    )
    writer._insert_orm([traced])
    if connection.vendor == "postgresql":
        writer._insert_postgresql(connection, [{**traced, "request_id": "json"}])
    else:
        writer._insert_orm([{**traced, "request_id": "json"}])

    def stored(request_id):
        row = UsageRecord.objects.values().get(request_id=request_id)
        del row["id"], row["request_id"]
        return row

    assert stored("json") == stored("orm")
    assert stored("orm")["request_body"] == traced["request_body"]
    assert stored("orm")["created_at"] == datetime.fromisoformat(traced["created_at"])


def test_a_record_stored_twice_is_kept_once(tmp_path):
    writer._insert([record("same")])
    writer._insert([record("same"), record("other")])
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["other", "same"]


def test_a_record_orjson_cannot_encode_is_still_spooled(tmp_path):
    """The spool line is written with orjson; a lone surrogate (which it refuses) falls back to
    the standard library's escaped form, so the caller never fails on the usage log."""
    spool = writer.SpoolWriter(tmp_path, background=False)
    spool.record(record("plain"))
    spool.record({**record("surrogate"), "path": "/elements/api-v2/x\ud800"})
    lines = spool.path.read_bytes().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["plain", "surrogate"]
    assert json.loads(lines[1])["path"] == "/elements/api-v2/x\ud800"
    spool.flush()  # the database cannot take it either: dropped alone, as any unstorable record
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["plain"]
