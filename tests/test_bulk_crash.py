"""Bulk jobs survive their worker and their broker: a real ``celery worker`` is SIGKILLed
mid-job, and the test's own Redis server (on its own port, so the machine's shared one is left
alone) is restarted with nothing kept on disk. Another worker then finishes every job with every
record exactly once: no duplicates, no gaps.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest
import redis

from conftest import SA_CONFIGURATION
from simulators.mixpanel import datagen
from tests.live_platform import LivePlatform, free_port
from tests.test_bulk_live import FAST_BULK_ENV, Api, expected_activities, require

pytestmark = pytest.mark.integration


class RedisServer:
    """``redis-server --save '' --appendonly no`` on a free loopback port: a restart loses
    every queued message, as a production Redis without persistence would."""

    def __init__(self):
        binary = shutil.which("redis-server")
        require(binary is not None, "redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return self
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def messages(self) -> int:
        """Task messages held by the broker: queued (kombu keeps each queue as a Redis list)
        plus delivered but unacknowledged (the ``unacked`` hash). A worker that reconnects
        after a restart re-declares its bindings (sets), which hold no messages."""
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        queued = sum(client.llen(key) for key in client.scan_iter() if client.type(key) == b"list")
        return queued + client.hlen("unacked")


@pytest.fixture(scope="module")
def own_redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(simulator, own_redis):
    env = {**FAST_BULK_ENV, "CELERY_BROKER_URL": own_redis.url}
    with LivePlatform(mixpanel_base_url=simulator.base_url, extra_env=env) as platform:
        yield platform


@pytest.fixture
def api(live, sim):
    instance = live.create_instance(SA_CONFIGURATION)
    return Api(live, instance["token"])


def kill_mid_job_then_finish_it(live, api, sim) -> int:
    """A real worker SIGKILLed in the middle of an 8-day job (48,000 events), another worker
    finishing it: every record exactly once. Returns the job's id."""
    # 6000 events a day: pages within one day, so the kill can fall between pages of one day.
    sim.configure(events_per_day=6000)
    sim.faults(latency_ms=250, path_prefix="/api/2.0/export")
    days = ("2024-01-01", "2024-01-08")
    first = live.start_worker(concurrency=1)
    job = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    api.wait_records(job, 7000)
    first.kill()
    assert not first.alive()
    killed = api.status(job)
    assert killed["status"] == "RUNNING" and 0 < killed["recordsCount"] < 48000, killed

    second = live.start_worker(concurrency=1)
    done = api.wait(job, timeout=120)
    assert done["status"] == "COMPLETED", (done, second.log_text()[-3000:])
    assert done["recordsCount"] == 48000 and done["recordsFailedCount"] == 0
    assert api.ndjson(job, "activities") == expected_activities(*days, 6000)
    second.stop()
    return job


def test_sigkill_mid_job_then_another_worker_finishes_it_exactly_once(live, api, sim):
    kill_mid_job_then_finish_it(live, api, sim)


def test_redis_restart_and_sigkill_mid_job_the_sweeper_requeues(live, api, sim, own_redis):
    """Redis restarts while a job runs (the queued jobs' messages are gone), then the worker is
    killed too (the running job's message is gone). Only the job rows are left: the sweeper of
    the next worker hands all three out again."""
    sim.configure(events_per_day=3000, profiles={"count": 2200})
    sim.faults(latency_ms=300, path_prefix="/api/2.0/export")
    days = ("2024-01-01", "2024-01-10")
    worker = live.start_worker(concurrency=1)
    long_job = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    api.wait_records(long_job, 3000)
    users = api.submit("select * from users")
    short = api.submit("select * from activities", **{"from": "2024-02-01", "to": "2024-02-01"})
    assert own_redis.messages() > 0

    own_redis.restart()
    assert own_redis.messages() == 0  # every message is lost
    worker.kill()
    mid = api.status(long_job)
    assert mid["status"] == "RUNNING" and mid["recordsCount"] < 30000, mid
    assert api.status(users)["status"] == "CREATED" and api.status(short)["status"] == "CREATED"

    replacement = live.start_worker(concurrency=1)
    for job_id, expected_count in ((long_job, 30000), (users, 2200), (short, 3000)):
        done = api.wait(job_id, timeout=120)
        assert done["status"] == "COMPLETED", (done, replacement.log_text()[-3000:])
        assert done["recordsCount"] == expected_count
    assert api.ndjson(long_job, "activities") == expected_activities(*days, 3000)
    assert api.ndjson(short, "activities") == expected_activities("2024-02-01", "2024-02-01", 3000)
    profiles = [json.loads(line) for line in api.ndjson(users, "users").splitlines()]
    assert sorted(p["$distinct_id"] for p in profiles) == sorted(
        datagen.profile(i)["$distinct_id"] for i in range(2200)
    )
    replacement.stop()
