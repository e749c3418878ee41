"""The raw export serves what /import accepted too (``exported.py``): the events of the range
after the generated ones, in import order, a repeated import exported twice, with the export's
own filters. The real simulator as a subprocess, plain HTTP."""

from __future__ import annotations

import json
import sys
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
