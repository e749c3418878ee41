"""Crash recovery without beat, and jobs that stop with their instance, against real processes:
gunicorn, ``celery -A platform_core worker`` subprocesses (SIGKILLed with ``Worker.kill()``),
a separate ``celery beat``, the Mixpanel simulator over HTTP, and the database of DATABASE_URL.

Each crash test kills a worker mid-job, starts another one, and requires the job to end
COMPLETED with every record of the simulator's data exactly once, within lease + 30 s of the new
worker being ready. They run on Redis (REDIS_URL, the production broker) and, where it costs
little, on the embedded filesystem broker of ``scripts/run.sh``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from datetime import date

import pytest

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform
from tests.test_bulk_live import FAST_BULK_ENV, Api, drop_keys, expected_activities, redis_url

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)

LEASE = float(FAST_BULK_ENV["BULK_LEASE_SECONDS"])
RECOVERY_BUDGET = LEASE + 30  # what issue 8 allows after a worker is available again
INSTANCE_DISABLED = "Stopped because the element instance was disabled."
INSTANCE_DELETED = "Stopped because the element instance was deleted."
EXPORT = "/api/2.0/export"


class Platforms:
    """One live platform per broker, started on first use and shared by the module's tests."""

    def __init__(self, simulator):
        self.simulator = simulator
        self.started: dict[str, LivePlatform] = {}
        self.prefixes: list[tuple[str, str]] = []

    def get(self, broker: str) -> LivePlatform:
        if broker not in self.started:
            env = dict(FAST_BULK_ENV)
            if broker == "redis":
                url, prefix = redis_url(), f"bulk-recovery-{uuid.uuid4().hex[:8]}:"
                self.prefixes.append((url, prefix))
                env.update(CELERY_BROKER_URL=url, CELERY_BROKER_KEY_PREFIX=prefix)
            live = LivePlatform(mixpanel_base_url=self.simulator.base_url, extra_env=env)
            self.started[broker] = live.__enter__()
        return self.started[broker]

    def stop_workers(self) -> None:
        for live in self.started.values():
            for worker in live.workers_started:
                worker.stop()
            live.workers_started.clear()

    def stop(self) -> None:
        for live in self.started.values():
            live.stop()
        for url, prefix in self.prefixes:
            drop_keys(url, prefix)


@pytest.fixture(scope="module")
def platforms(simulator):
    platforms = Platforms(simulator)
    yield platforms
    platforms.stop()


@pytest.fixture(autouse=True)
def stop_workers(platforms):
    """Each test starts its own workers (and beat); none outlives it."""
    yield
    platforms.stop_workers()


@pytest.fixture(params=["redis", "filesystem"])
def live(request, platforms):
    return platforms.get(request.param)


@pytest.fixture
def live_redis(platforms):
    return platforms.get("redis")


class Tenant:
    """An instance of the live platform's tenant, and its bulk API."""

    def __init__(self, live: LivePlatform):
        self.live = live
        self.instance = live.create_instance(SA_CONFIGURATION)
        self.api = Api(live, self.instance["token"])
        self.platform = Api(live, "", auth=live.platform_auth)

    def disable(self) -> None:
        path = f"/elements/api-v2/instances/{self.instance['id']}/enabled"
        status, _, body = self.platform.request("DELETE", path)
        assert status == 200 and json.loads(body)["disabled"] is True, body

    def enable(self) -> None:
        path = f"/elements/api-v2/instances/{self.instance['id']}/enabled"
        status, _, body = self.platform.request("PUT", path)
        assert status == 200, body

    def delete(self) -> None:
        path = f"/elements/api-v2/instances/{self.instance['id']}"
        status, _, body = self.platform.request("DELETE", path)
        assert status == 200, body


def job_row(live: LivePlatform, job_id: int) -> dict:
    """The job's row, read from the platform's database (its API no longer answers for a
    disabled or deleted instance)."""
    sql = (
        "SELECT status, status_message, records_count, instance_id, callback_status"
        " FROM bulk_bulkjob WHERE id = %s"
    )
    if live.database_url.startswith("sqlite"):
        with sqlite3.connect(live.database_url.removeprefix("sqlite:///")) as conn:
            row = conn.execute(sql.replace("%s", "?"), (job_id,)).fetchone()
    else:
        import psycopg

        with psycopg.connect(live.database_url) as conn:
            row = conn.execute(sql, (job_id,)).fetchone()
    keys = ("status", "statusMessage", "recordsCount", "instanceId", "callbackStatus")
    return dict(zip(keys, row, strict=True))


def wait_row(live, job_id, until, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = job_row(live, job_id)
        if until(row):
            return row
        assert time.monotonic() < deadline, f"job {job_id} still {row} after {timeout} s"
        time.sleep(0.05)


def exports(sim) -> int:
    return sum(1 for r in sim.requests() if r["path"] == EXPORT)


def kill_mid_job_and_recover(live, sim, *, restart_beat: bool, days, per_day, kill_at: int):
    """Start a job, SIGKILL its worker once ``kill_at`` records are committed, start another
    worker, and check that the job completes exactly once within the budget."""
    api = Tenant(live).api
    first = live.start_worker(concurrency=1, beat=restart_beat)
    job = api.submit("select * from activities", **{"from": days[0], "to": days[1]})
    api.wait_records(job, kill_at)
    first.kill()
    total = per_day * ((date.fromisoformat(days[1]) - date.fromisoformat(days[0])).days + 1)
    killed = api.status(job)
    assert killed["status"] == "RUNNING" and kill_at <= killed["recordsCount"] < total, killed

    second = live.start_worker(concurrency=1, beat=restart_beat)
    ready = time.monotonic()
    done = api.wait(job, timeout=RECOVERY_BUDGET + 30)
    took = time.monotonic() - ready
    logger.info("job %s completed %.1f s after the new worker was ready", job, took)
    assert done["status"] == "COMPLETED", (done, second.log_text()[-3000:])
    assert took <= RECOVERY_BUDGET, f"completed {took:.1f} s after the new worker was ready"
    assert done["recordsCount"] == total and done["recordsFailedCount"] == 0
    assert api.ndjson(job, "activities") == expected_activities(*days, per_day)
    return killed, done


# --- crash recovery ----------------------------------------------------------------------------


def test_sigkill_mid_job_then_a_worker_without_beat_finishes_it(live, sim):
    """``celery -A platform_core worker`` alone, before and after the kill: nothing but the
    workers' own sweeper can hand the job out again (with Redis its message sits unacknowledged
    for the hour-long visibility timeout; the filesystem broker has dropped it)."""
    sim.configure(events_per_day=6000)  # two pages a day: the kill can fall inside a day
    sim.faults(latency_ms=250, path_prefix=EXPORT)
    kill_mid_job_and_recover(
        live, sim, restart_beat=False, days=("2024-01-01", "2024-01-06"), per_day=6000, kill_at=7000
    )


def test_sigkill_mid_job_with_beat_in_the_worker(live_redis, sim):
    sim.configure(events_per_day=6000)
    sim.faults(latency_ms=250, path_prefix=EXPORT)
    kill_mid_job_and_recover(
        live_redis,
        sim,
        restart_beat=True,
        days=("2024-02-01", "2024-02-06"),
        per_day=6000,
        kill_at=7000,
    )


def test_sigkill_mid_job_with_a_separate_beat(live_redis, sim):
    sim.configure(events_per_day=6000)
    sim.faults(latency_ms=250, path_prefix=EXPORT)
    beat = live_redis.start_beat()
    kill_mid_job_and_recover(
        live_redis,
        sim,
        restart_beat=False,
        days=("2024-03-01", "2024-03-06"),
        per_day=6000,
        kill_at=7000,
    )
    assert beat.alive()  # beat ran throughout; it no longer schedules the sweep


def test_sigkill_during_the_last_page(live, sim):
    """One page a day; the kill falls while the last day's export is in flight."""
    sim.configure(events_per_day=3000)
    sim.faults(latency_ms=1500, path_prefix=EXPORT)
    killed, _ = kill_mid_job_and_recover(
        live, sim, restart_beat=False, days=("2024-04-01", "2024-04-04"), per_day=3000, kill_at=9000
    )
    assert killed["recordsCount"] == 9000  # three of four pages committed


# --- jobs stop with their instance -------------------------------------------------------------


def test_disabling_the_instance_stops_a_running_job(live, sim):
    sim.configure(events_per_day=2000)
    sim.faults(latency_ms=400, path_prefix=EXPORT)
    tenant = Tenant(live)
    live.start_worker(concurrency=1, beat=False)
    job = tenant.api.submit(
        "select * from activities", **{"from": "2024-01-01", "to": "2024-01-20"}
    )
    tenant.api.wait_records(job, 4000)
    tenant.disable()
    at_disable = exports(sim)
    disabled = time.monotonic()
    row = wait_row(live, job, lambda r: r["status"] != "RUNNING", timeout=30)
    took = time.monotonic() - disabled
    logger.info("job %s stopped %.2f s after its instance was disabled", job, took)
    assert row["status"] == "CANCELLED" and row["statusMessage"] == INSTANCE_DISABLED, row
    assert took < 10, f"stopped {took:.1f} s after the disable"  # one page is ~0.5 s
    # At most the export already on its way when the instance was disabled; nothing after.
    at_stop = exports(sim)
    assert at_stop <= at_disable + 1
    time.sleep(2)
    assert exports(sim) == at_stop and job_row(live, job)["recordsCount"] == row["recordsCount"]
    assert 4000 <= row["recordsCount"] < 40000
    # Its owner reads the status again once the instance is enabled; it stays stopped.
    tenant.enable()
    status = tenant.api.status(job)
    assert status["status"] == "CANCELLED" and status["statusMessage"] == INSTANCE_DISABLED


def test_deleting_the_instance_stops_a_running_job_and_keeps_its_row(live_redis, sim):
    sim.configure(events_per_day=2000)
    sim.faults(latency_ms=400, path_prefix=EXPORT)
    tenant = Tenant(live_redis)
    live_redis.start_worker(concurrency=1, beat=False)
    job = tenant.api.submit(
        "select * from activities", **{"from": "2024-01-01", "to": "2024-01-20"}
    )
    tenant.api.wait_records(job, 4000)
    tenant.delete()
    # The deletion itself marks the job; the worker stops before its next vendor call.
    row = job_row(live_redis, job)
    assert row["status"] == "CANCELLED" and row["statusMessage"] == INSTANCE_DELETED, row
    assert row["instanceId"] is None
    at_delete = exports(sim)
    time.sleep(3)
    assert exports(sim) <= at_delete + 1
    at_rest = exports(sim)
    time.sleep(2)
    assert exports(sim) == at_rest
    # The instance's token went with it.
    status, _, _ = tenant.api.request("GET", f"/elements/api-v2/bulk/{job}/status")
    assert status == 401


def test_a_job_whose_instance_is_disabled_before_a_worker_claims_it_never_starts(live_redis, sim):
    sim.configure(events_per_day=500)
    tenant = Tenant(live_redis)
    job = tenant.api.submit(
        "select * from activities", **{"from": "2024-01-01", "to": "2024-01-02"}
    )
    tenant.disable()
    before = exports(sim)
    live_redis.start_worker(concurrency=1, beat=False)
    row = wait_row(live_redis, job, lambda r: r["status"] != "CREATED", timeout=30)
    row = wait_row(live_redis, job, lambda r: r["status"] != "RUNNING", timeout=30)
    assert row["status"] == "CANCELLED" and row["statusMessage"] == INSTANCE_DISABLED, row
    assert row["recordsCount"] == 0 and exports(sim) == before
