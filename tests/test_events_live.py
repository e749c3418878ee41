"""Events by polling end to end, against real processes: gunicorn, ``celery worker --beat``
subprocesses (SIGKILLed mid-poll with ``Worker.kill()``), Redis as the broker, the Mixpanel
simulator over HTTP and a local receiver of the notifications.

Each test enables events on a new instance, waits for the baseline poll, changes the
simulator's data (its control API stamps changes with its own clock) and waits for the signed
notification, then checks the events API shows it delivered and that later (overlapping) polls
never notify the same change again.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from urllib.parse import quote

import pytest

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform
from tests.test_bulk_live import Api, Receiver, drop_keys, redis_url, signature_of

pytestmark = pytest.mark.integration

KEY = "live-events-signing-key-0123456789"
LEASE = 4.0
EVENTS_ENV = {
    "EVENTS_TICK_INTERVAL": "1",
    "EVENTS_POLL_LEASE_SECONDS": str(LEASE),
    "EVENTS_DELIVERY_BACKOFF": "1",
    "CALLBACK_ALLOW_PRIVATE_NETWORKS": "1",
}
INTERVAL_MINUTES = 0.1  # the shortest polling interval: 6 s


def start_platform(simulator, **env) -> tuple[LivePlatform, tuple[str, str]]:
    url, prefix = redis_url(), f"events-live-{uuid.uuid4().hex[:8]}:"
    live = LivePlatform(
        mixpanel_base_url=simulator.base_url,
        extra_env={
            **EVENTS_ENV,
            **env,
            "CELERY_BROKER_URL": url,
            "CELERY_BROKER_KEY_PREFIX": prefix,
        },
    )
    return live.__enter__(), (url, prefix)


@pytest.fixture(scope="module")
def live(simulator):
    simulator.reset()
    platform, keys = start_platform(simulator)
    yield platform
    platform.stop()
    drop_keys(*keys)


@pytest.fixture(autouse=True)
def stop_workers(live):
    yield
    for worker in live.workers_started:
        worker.stop()
    live.workers_started.clear()


@pytest.fixture
def receiver():
    r = Receiver(path="/events")
    yield r
    r.close()


def query(live: LivePlatform, sql: str, *params):
    if live.database_url.startswith("sqlite"):
        with sqlite3.connect(live.database_url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(live.database_url) as conn:
        return conn.execute(sql, params).fetchall()


def polls_of(live, instance_id: int, object_name: str = "users") -> tuple[int, str]:
    rows = query(
        live,
        "SELECT polls, lease_owner FROM events_poller WHERE instance_id = %s AND object_name = %s",
        instance_id,
        object_name,
    )
    return rows[0] if rows else (0, "")


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def enable_events(live, url: str, objects: str = "users") -> dict:
    return live.create_instance(
        {
            **SA_CONFIGURATION,
            "event.notification.enabled": "true",
            "event.vendor.type": "polling",
            "event.notification.callback.url": url,
            "event.notification.signature.key": KEY,
            "event.poller.refresh_interval": INTERVAL_MINUTES,
            "event.objects": objects,
        }
    )


def change_profile(simulator, distinct_id: str) -> None:
    simulator._control("POST", "clock", {"advance": 60})
    simulator._control("POST", "profile-changes", {"$distinct_id": distinct_id, "$set": {"n": 1}})


def messages(receiver) -> list[dict]:
    out = []
    for headers, body in receiver.delivered():
        assert headers["Elements-Webhook-Signature"] == signature_of(body, KEY)
        message = json.loads(body)["message"]
        assert headers["Elements-Webhook-Id"] == message["eventId"]
        out.append(message)
    return out


def notified_ids(receiver, instance_id: int) -> list[str]:
    return [
        event["objectId"]
        for message in messages(receiver)
        if message["instanceId"] == instance_id
        for event in message["events"]
    ]


def events_of(live, instance_id: int) -> list[dict]:
    platform = Api(live, "", auth=live.platform_auth)
    status, _, body = platform.request("GET", f"/elements/api-v2/instances/{instance_id}/events")
    assert status == 200, body
    return json.loads(body)


def test_a_change_is_notified_once_even_when_a_worker_dies_mid_poll(live, simulator, receiver):
    first = live.start_worker(concurrency=1)
    instance = enable_events(live, receiver.url)
    instance_id = instance["id"]
    wait_for(lambda: polls_of(live, instance_id)[0] >= 1, 30, "the baseline poll")

    change_profile(simulator, "live-1")
    wait_for(lambda: notified_ids(receiver, instance_id), 30, "the first notification")
    [message] = messages(receiver)
    assert (message["elementKey"], message["instanceName"]) == ("mixpanel", "live")
    [event] = message["events"]
    assert (event["eventType"], event["objectId"], event["objectType"]) == (
        "CREATED",
        "live-1",
        "users",
    )
    [shown] = events_of(live, instance_id)
    assert shown["id"] == event["id"] and shown["status"] == "NOTIFIED"
    assert [d["status"] for d in shown["deliveries"]] == ["DELIVERED"]

    # The next poll's engage call is slow: the worker is killed while it waits for it.
    simulator.faults(latency_ms={"ms": 3000, "path_prefix": "/api/query/engage", "count": 1})
    change_profile(simulator, "live-2")
    wait_for(lambda: polls_of(live, instance_id)[1], 30, "a poll in progress")
    first.kill()
    live.start_worker(concurrency=1)
    wait_for(lambda: "live-2" in notified_ids(receiver, instance_id), 60, "the second change")

    # Later polls overlap both changes: neither is notified again.
    polls_then = polls_of(live, instance_id)[0]
    wait_for(lambda: polls_of(live, instance_id)[0] >= polls_then + 2, 40, "two more polls")
    time.sleep(2)  # a delivery queued by the last poll would have arrived
    assert sorted(notified_ids(receiver, instance_id)) == ["live-1", "live-2"]
    shown = events_of(live, instance_id)
    assert [(e["objectId"], e["status"]) for e in shown] == [
        ("live-1", "NOTIFIED"),
        ("live-2", "NOTIFIED"),
    ]


def test_activities_and_a_receiver_that_fails_then_recovers(live, simulator, receiver):
    simulator.configure(events_per_day=0)
    receiver.statuses = [503, 500, 200]
    live.start_worker(concurrency=2)
    instance = enable_events(live, receiver.url, objects="activities")
    instance_id = instance["id"]
    wait_for(lambda: polls_of(live, instance_id, "activities")[0] >= 1, 30, "the baseline")

    simulator._control("POST", "clock", {"advance": 60})
    added = {"event": "Purchase", "properties": {"$insert_id": f"buy-{uuid.uuid4().hex[:8]}"}}
    simulator._control("POST", "events", {"events": [added]})
    # Two failures, then the receiver is back: the first retry comes within 30 s.
    wait_for(lambda: notified_ids(receiver, instance_id), 60, "the notification")
    assert [status for status, _, _ in receiver.received] == [503, 500, 200]
    [event] = messages(receiver)[0]["events"]
    assert (event["eventType"], event["objectId"], event["objectType"]) == (
        "CREATED",
        added["properties"]["$insert_id"],
        "activities",
    )
    [shown] = events_of(live, instance_id)
    assert shown["status"] == "NOTIFIED"
    assert [(d["status"], d["responseStatus"]) for d in shown["deliveries"]] == [
        ("RETRY", 503),
        ("RETRY", 500),
        ("DELIVERED", 200),
    ]


def test_a_disabled_instance_stops_polling_at_once(live, simulator, receiver):
    live.start_worker(concurrency=1)
    instance = enable_events(live, receiver.url)
    instance_id = instance["id"]
    wait_for(lambda: polls_of(live, instance_id)[0] >= 1, 30, "the baseline poll")
    platform = Api(live, "", auth=live.platform_auth)
    status, _, body = platform.request(
        "DELETE", f"/elements/api-v2/instances/{instance_id}/enabled"
    )
    assert status == 200, body
    polls_then = polls_of(live, instance_id)[0]
    change_profile(simulator, "while-disabled")
    time.sleep(INTERVAL_MINUTES * 60 + 4)
    assert polls_of(live, instance_id)[0] == polls_then
    assert notified_ids(receiver, instance_id) == []


def test_two_instances_of_one_project_stay_within_its_query_budget(simulator, receiver):
    budget = 5
    simulator.reset()
    simulator.configure(events_per_day=0)
    platform, keys = start_platform(
        simulator, EVENTS_PROJECT_QUERY_BUDGET=str(budget), EVENTS_PROJECT_QUERY_WINDOW="3600"
    )
    try:
        platform.start_worker(concurrency=2)
        simulator.clear_requests()
        instances = [enable_events(platform, receiver.url, "users,activities") for _ in range(2)]
        # 4 pollers every 6 s: 8 queries asked for in the first 12 s, more after.
        time.sleep(2 * INTERVAL_MINUTES * 60 + 6)
        vendor_calls = [
            r for r in simulator.requests() if r["path"] in ("/api/query/engage", "/api/2.0/export")
        ]
        assert len(vendor_calls) == budget
        spent = query(
            platform,
            "SELECT count(*) FROM events_poller WHERE last_error LIKE %s AND instance_id IN "
            "(%s, %s)",
            "%budget%",
            *[i["id"] for i in instances],
        )
        assert spent[0][0] >= 1
    finally:
        platform.stop()
        drop_keys(*keys)


def test_notifications_never_leave_the_caller_scope(live, simulator, receiver):
    """The API of another tenant of the same platform sees none of these events."""
    live.start_worker(concurrency=1)
    instance = enable_events(live, receiver.url)
    wait_for(lambda: polls_of(live, instance["id"])[0] >= 1, 30, "the baseline poll")
    change_profile(simulator, "scoped-1")
    wait_for(lambda: notified_ids(receiver, instance["id"]), 30, "the notification")
    [event] = events_of(live, instance["id"])
    other = json.loads(live.manage("create_organization", "Other", "--email", "o@x.test", "--json"))
    auth = f"User {other['user_secret']}, Organization {other['organization_secret']}"
    api = Api(live, "", auth=auth)
    for path in (
        f"/elements/api-v2/instances/events/{quote(event['id'])}",
        f"/elements/api-v2/instances/{instance['id']}/events",
    ):
        status, _, _ = api.request("GET", path)
        assert status == 404, path
    status, _, body = api.request("GET", "/elements/api-v2/instances/events")
    assert status == 200 and json.loads(body) == []
