"""The embedded broker's consumer is woken by a new message, not by its poll (platform_core/
broker.py): on the transport itself with a poll far longer than any bound here, then end to end
with gunicorn and a real worker process on the filesystem broker."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import urllib.parse
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform

# Far longer than every bound below: a message that waited for a poll would fail the test.
POLL = 30.0


@pytest.fixture
def broker(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path),
        "store_processed": False,
        "polling_interval": POLL,
    }
    # A name of its own: kombu keeps the declared exchanges of the filesystem transport in
    # process-wide state, so another test's "jobs" would not be declared in this folder.
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)

    def connect():
        return Connection(
            "filesystem://", transport="platform_core.broker:Transport", transport_options=options
        )

    return connect, queue


def publish_later(connect, queue, body, delay):
    def publish():
        time.sleep(delay)
        with connect() as conn:
            conn.Producer().publish(
                body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue]
            )

    thread = threading.Thread(target=publish)
    thread.start()
    return thread


def test_a_waiting_consumer_is_woken_by_a_new_message(broker):
    connect, queue = broker
    received = []
    with connect() as conn, conn.Consumer(queue, callbacks=[lambda b, m: received.append(b)]):
        # The consumer looks at the empty folder first, then waits; the message lands meanwhile.
        thread = publish_later(connect, queue, {"job": 1}, delay=0.5)
        started = time.monotonic()
        conn.drain_events(timeout=POLL)
        waited = time.monotonic() - started
        thread.join()
    assert received == [{"job": 1}]
    assert waited < 10, f"the consumer waited {waited:.1f} s: it polled instead of being woken"


def test_a_full_consumer_is_woken_by_its_own_ack(broker):
    """Prefetch one, acks late (the worker's settings): the second message lands while the
    first is unacknowledged; the ack frees the slot and the consumer takes it at once."""
    connect, queue = broker
    messages = []
    with (
        connect() as conn,
        conn.Consumer(queue, callbacks=[lambda b, m: messages.append(m)], prefetch_count=1),
    ):
        publish_later(connect, queue, {"job": 1}, delay=0).join()
        publish_later(connect, queue, {"job": 2}, delay=0).join()
        conn.drain_events(timeout=POLL)
        # One of them (two messages of the same millisecond come in either order), not both.
        assert len(messages) == 1
        # Acked from another thread, as celery's pool result handler does.
        acker = threading.Timer(0.5, messages[0].ack)
        acker.start()
        started = time.monotonic()
        conn.drain_events(timeout=POLL)
        waited = time.monotonic() - started
        acker.join()
        messages[1].ack()
    assert sorted(m.payload["job"] for m in messages) == [1, 2]
    assert waited < 10, f"the freed slot waited {waited:.1f} s for a poll"


@pytest.mark.integration
def test_empty_jobs_on_the_embedded_broker_complete_without_waiting_for_a_poll(simulator):
    """Kombu's filesystem transport polls every second: POST to COMPLETED of an empty job was
    1 s at the median. Woken, it is a few tens of milliseconds; the bound leaves a wide margin
    for a loaded machine and still fails a polled broker most of the time."""
    simulator.reset()
    simulator.configure(events_per_day=0)
    with LivePlatform(mixpanel_base_url=simulator.base_url, extra_env={}) as live:
        instance = live.create_instance(SA_CONFIGURATION)
        live.start_worker(concurrency=1, beat=False)
        auth = {"Authorization": live.element_auth(instance["token"])}
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=60)
        query = urllib.parse.urlencode(
            {"q": "select * from activities", "from": "2024-01-01", "to": "2024-01-01"}
        )
        took = []
        for _ in range(6):
            started = time.monotonic()
            conn.request("POST", f"/elements/api-v2/bulk/query?{query}", headers=auth)
            response = conn.getresponse()
            job = json.loads(response.read())
            assert response.status == 200, job
            deadline = started + 60
            while True:
                conn.request("GET", f"/elements/api-v2/bulk/{job['id']}/status", headers=auth)
                status = json.loads(conn.getresponse().read())
                if status["status"] in ("COMPLETED", "ERROR", "CANCELLED"):
                    break
                assert time.monotonic() < deadline, status
                time.sleep(0.01)
            assert status["status"] == "COMPLETED" and status["recordsCount"] == 0, status
            took.append(time.monotonic() - started)
        conn.close()
    assert statistics.median(took[1:]) < 0.4, took  # the first one warms the worker up
