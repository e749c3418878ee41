"""Concurrent imports take turns in the simulator: all of them get in, and only their
processing queues (receiving them, and any latency fault, stay concurrent)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from simulators.mixpanel.testing import SimulatorProcess


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess() as process:
        yield process


@pytest.fixture(autouse=True)
def fresh(sim):
    sim.reset()
    yield
    sim.clear_faults()


def batch(start: int, count: int) -> list[dict]:
    at = int(time.time()) - 60
    return [
        {"event": "Turn", "properties": {"time": at, "distinct_id": f"d{i}", "$insert_id": f"t{i}"}}
        for i in range(start, start + count)
    ]


def post_import(sim, events: list[dict]) -> tuple[int, dict]:
    status, _, body = sim.request(
        "POST",
        f"/import?strict=1&project_id={sim.project_id}",
        events,
        auth=sim.sa_auth(),
        timeout=30,
    )
    return status, json.loads(body)


def test_concurrent_imports_all_get_in(sim):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: post_import(sim, batch(n * 500, 500)), range(8)))
    assert [status for status, _ in answers] == [200] * 8
    assert sum(body["num_records_imported"] for _, body in answers) == 4000
    imported = sim.imported()["events"]
    assert sorted(e["properties"]["$insert_id"] for e in imported) == sorted(
        f"t{i}" for i in range(4000)
    )


def test_latency_faults_are_waited_out_side_by_side(sim):
    sim.faults(path_prefix="/import", latency_ms=400, count=4)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda n: post_import(sim, batch(n * 10, 10)), range(4)))
    took = time.monotonic() - started
    assert [status for status, _ in answers] == [200] * 4
    assert 0.4 <= took < 1.2, took  # one after another would take 1.6 s
