"""The simulator's controls for polling tests: its clock, profile changes stamped with it, and
events added as if ingested now, which the export returns. Real subprocess, plain HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest


@pytest.fixture(autouse=True)
def no_generated_events(fresh, sim):
    sim.configure(events_per_day=0)


def control(sim, method, name, payload=None):
    status, _, body = sim.request(method, f"/__sim__/{name}", payload)
    return status, json.loads(body)


def test_the_clock_moves_on_and_back_to_now_on_reset(sim):
    _, before = control(sim, "GET", "clock")
    _, moved = control(sim, "POST", "clock", {"advance": 3600})
    assert moved["offset"] == 3600 and moved["now"] > before["now"]
    assert control(sim, "POST", "clock", {"advance": -1})[0] == 400
    sim.reset()
    assert control(sim, "GET", "clock")[1]["offset"] == 0


def test_a_profile_change_is_stamped_with_the_clock(sim):
    control(sim, "POST", "clock", {"advance": 86400})
    _, now = control(sim, "GET", "clock")
    _, [changed] = control(sim, "POST", "profile-changes", {"$distinct_id": "p1", "$set": {"a": 1}})
    props = changed["$properties"]
    assert props["$last_seen"] == now["now"] == props["$created"]
    control(sim, "POST", "clock", {"advance": 60})
    _, [again] = control(
        sim, "POST", "profile-changes", {"$distinct_id": "p1", "$set": {"a": 2}, "$unset": ["x"]}
    )
    assert again["$properties"]["$created"] == props["$created"]
    assert again["$properties"]["$last_seen"] > props["$last_seen"]
    assert sim.profile("p1")["$properties"]["a"] == 2
    assert control(sim, "POST", "profile-changes", {"$set": {}})[0] == 400


def test_added_events_are_exported_with_their_processing_time(sim):
    _, [added] = control(
        sim, "POST", "events", {"events": [{"event": "Paid", "properties": {"$insert_id": "i1"}}]}
    )
    today = datetime.now(UTC).date().isoformat()
    query = urlencode({"from_date": today, "to_date": today, "project_id": sim.project_id})
    status, _, body = sim.request("GET", f"/api/2.0/export?{query}", auth=sim.sa_auth())
    assert status == 200
    [exported] = [json.loads(line) for line in body.splitlines() if line.strip()]
    assert exported == added
    assert exported["properties"]["$insert_id"] == "i1"
    assert isinstance(exported["properties"]["mp_processing_time_ms"], int)
    assert control(sim, "DELETE", "events")[0] == 200
    assert control(sim, "GET", "events")[1] == []
