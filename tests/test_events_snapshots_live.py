"""Cohorts and annotations events end to end, with tests/test_events_live.py's harness: gunicorn,
``celery worker --beat`` subprocesses (one SIGKILLed mid-poll), Redis, the Mixpanel simulator
over HTTP (its control API adds, changes and deletes cohorts and annotations) and a local
receiver. Each change is notified once, signed, and shown delivered by the events API."""

from __future__ import annotations

import time

import pytest

from tests.test_events_live import (
    enable_events,
    events_of,
    live,  # noqa: F401 - a fixture
    messages,
    polls_of,
    receiver,  # noqa: F401 - a fixture
    stop_workers,  # noqa: F401 - a fixture
    wait_for,
)

pytestmark = pytest.mark.integration


def notified(receiver, instance_id: int) -> list[tuple[str, str, str]]:  # noqa: F811
    return [
        (event["objectType"], event["eventType"], event["objectId"])
        for message in messages(receiver)
        if message["instanceId"] == instance_id
        for event in message["events"]
    ]


def test_cohorts_and_annotations_are_notified_once_even_when_a_worker_dies_mid_poll(
    live,  # noqa: F811
    simulator,
    receiver,  # noqa: F811
):
    first = live.start_worker(concurrency=1)
    instance_id = enable_events(live, receiver.url, "cohorts,annotations")["id"]
    for name in ("cohorts", "annotations"):
        wait_for(lambda n=name: polls_of(live, instance_id, n)[0] >= 1, 30, f"{name} baseline")

    # The next cohorts poll's one request is slow: the worker is killed while it waits for it.
    simulator.faults(latency_ms={"ms": 3000, "path_prefix": "/api/query/cohorts/list", "count": 1})
    cohort = simulator.add_cohort(name="Live cohort")
    wait_for(lambda: polls_of(live, instance_id, "cohorts")[1], 30, "a cohorts poll in progress")
    first.kill()
    live.start_worker(concurrency=1)
    expected = [("cohorts", "CREATED", str(cohort["id"]))]
    wait_for(lambda: notified(receiver, instance_id) == expected, 60, "the cohort")

    annotation = simulator.add_annotation(date="2026-02-02 00:00:00", description="live")
    simulator.change_cohort(cohort["id"], name="Live cohort, renamed")
    expected += [
        ("annotations", "CREATED", str(annotation["id"])),
        ("cohorts", "UPDATED", str(cohort["id"])),
    ]
    wait_for(lambda: len(notified(receiver, instance_id)) >= 3, 60, "two more changes")
    simulator.delete_annotation(annotation["id"])
    expected.append(("annotations", "DELETED", str(annotation["id"])))
    wait_for(lambda: len(notified(receiver, instance_id)) >= 4, 60, "the deletion")

    # Later polls of both objects find nothing new: nothing is notified twice.
    then = {n: polls_of(live, instance_id, n)[0] for n in ("cohorts", "annotations")}
    for name, count in then.items():
        wait_for(lambda n=name, c=count: polls_of(live, instance_id, n)[0] >= c + 2, 40, name)
    time.sleep(2)  # a delivery queued by the last poll would have arrived
    assert sorted(notified(receiver, instance_id)) == sorted(expected)
    shown = events_of(live, instance_id)
    assert sorted((e["objectType"], e["eventType"], e["objectId"]) for e in shown) == sorted(
        expected
    )
    assert {e["status"] for e in shown} == {"NOTIFIED"}
    assert all([d["status"] for d in e["deliveries"]] == ["DELIVERED"] for e in shown)
