"""The raw export serves the added events too (``exported.py``): what /import accepted and what
the control API added, one store and one export hook, after the generated events of the range in
the order added, a repeated import exported twice, with the export's own filters, every added
event with Mixpanel's ``mp_processing_time_ms`` at the simulator's clock. The real simulator as
a subprocess, plain HTTP."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from simulators.mixpanel import datagen  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402

DAY_START = 1709251200  # 2024-03-01T00:00:00Z


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess() as process:
        yield process


@pytest.fixture(autouse=True)
def fresh(sim):
    sim.reset()


def export(sim, **params) -> list[dict]:
    query = urlencode({"project_id": 2002, **params})
    status, _, body = sim.request("GET", f"/api/2.0/export?{query}", auth=sim.sa_auth())
    assert status == 200, body
    return [json.loads(line) for line in body.decode().splitlines() if line]


def imported(insert_id: str, at: float, event: str = "Signup", **props) -> dict:
    return {
        "event": event,
        "properties": {"time": at, "distinct_id": "u1", "$insert_id": insert_id, **props},
    }


def test_imported_events_follow_the_generated_ones_of_their_day_repeats_included(sim):
    sim.configure(events_per_day=3)
    events = [
        imported("a", DAY_START + 10),
        imported("b", (DAY_START + 86400 + 5) * 1000),  # milliseconds: the next day
        imported("a", DAY_START + 10),  # imported again: exported again
    ]
    status, _, body = sim.request(
        "POST", "/import?strict=1&project_id=2002", events, auth=sim.sa_auth()
    )
    assert status == 200, body

    first_day = export(sim, from_date="2024-03-01", to_date="2024-03-01")
    generated = [datagen.event("2024-03-01", k, 3) for k in range(3)]
    assert first_day[:3] == generated
    assert [e["properties"]["$insert_id"] for e in first_day[3:]] == ["a", "a"]
    assert first_day[3]["properties"]["time"] == DAY_START + 10

    second_day = export(sim, from_date="2024-03-02", to_date="2024-03-02", time_in_ms="1")
    assert second_day[-1]["properties"]["$insert_id"] == "b"
    assert second_day[-1]["properties"]["time"] == (DAY_START + 86400 + 5) * 1000

    only = export(
        sim,
        from_date="2024-03-01",
        to_date="2024-03-02",
        event=json.dumps(["Signup"]),
        where='properties["$insert_id"] == "b"',
    )
    assert [e["properties"]["$insert_id"] for e in only] == ["b"]
    assert len(export(sim, from_date="2024-03-01", to_date="2024-03-02", limit=7)) == 7


def control(sim, method, name, payload=None):
    status, _, body = sim.request(method, f"/__sim__/{name}", payload)
    assert status == 200, body
    return json.loads(body)


def import_events(sim, events):
    status, _, body = sim.request(
        "POST", f"/import?strict=1&project_id={sim.project_id}", events, auth=sim.sa_auth()
    )
    assert status == 200, body


def export_today(sim, **params) -> list[dict]:
    today = datetime.now(UTC).date().isoformat()
    query = {"from_date": today, "to_date": today, "project_id": sim.project_id, **params}
    status, _, body = sim.request("GET", f"/api/2.0/export?{urlencode(query)}", auth=sim.sa_auth())
    assert status == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def event_at(name, insert_id, at):
    return {
        "event": name,
        "properties": {"time": at, "distinct_id": "d-1", "$insert_id": insert_id},
    }


def midnight_today() -> int:
    return int(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def test_an_import_of_old_events_is_processed_at_the_clock(sim):
    sim.configure(events_per_day=0)
    old = midnight_today() + 1  # today, but hours before the simulator's clock
    control(sim, "POST", "clock", {"advance": 3600})
    clock_ms = time.time() * 1000 + 3600_000
    import_events(sim, [event_at("Old", "old-1", old)])
    [line] = export_today(sim)
    assert line["properties"]["time"] == old
    processed = line["properties"]["mp_processing_time_ms"]
    assert abs(processed - clock_ms) < 5_000  # stamped with the clock, not the event's time
    # What the simulator received is shown as received, without the stamp.
    assert control(sim, "GET", "imported")["events"] == [event_at("Old", "old-1", old)]


def test_imported_and_added_events_are_one_export_in_the_order_added(sim):
    sim.configure(events_per_day=0)
    now = int(time.time())
    import_events(sim, [event_at("First", "i-1", now - 60)])
    [added] = control(sim, "POST", "events", {"events": [{"event": "Second"}]})
    import_events(sim, [event_at("Third", "i-3", (now - 30) * 1000)])  # ms are accepted too
    lines = export_today(sim)
    assert [line["event"] for line in lines] == ["First", "Second", "Third"]
    assert all(isinstance(line["properties"]["mp_processing_time_ms"], int) for line in lines)
    assert lines[1] == added
    assert lines[2]["properties"]["time"] == now - 30  # seconds, as the export sends it
    # The export's filters apply to both kinds alike.
    assert [line["event"] for line in export_today(sim, event='["Second","Third"]')] == [
        "Second",
        "Third",
    ]
    assert [line["event"] for line in export_today(sim, limit=2)] == ["First", "Second"]
    where = 'properties["$insert_id"] == "i-3"'
    assert [line["event"] for line in export_today(sim, where=where)] == ["Third"]
    in_ms = export_today(sim, time_in_ms="true")
    assert in_ms[0]["properties"]["time"] == (now - 60) * 1000


def test_each_control_lists_and_forgets_only_its_own(sim):
    sim.configure(events_per_day=0)
    now = int(time.time())
    import_events(sim, [event_at("Imported", "i-1", now)])
    control(sim, "POST", "events", {"events": [{"event": "Added"}]})
    assert [e["event"] for e in control(sim, "GET", "imported")["events"]] == ["Imported"]
    assert [e["event"] for e in control(sim, "GET", "events")] == ["Added"]
    control(sim, "DELETE", "events")
    assert [line["event"] for line in export_today(sim)] == ["Imported"]
    control(sim, "POST", "events", {"events": [{"event": "Added again"}]})
    control(sim, "DELETE", "imported")
    assert control(sim, "GET", "imported") == {"count": 0, "events": []}
    assert [line["event"] for line in export_today(sim)] == ["Added again"]
    sim.reset()
    assert export_today(sim) == []
