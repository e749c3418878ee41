"""Incremental sync across a real crash: a ``celery worker`` is SIGKILLed in the middle of an
``activities`` job whose export repeats events, another worker finishes it. The result holds
each ``$insert_id`` once and the status's ``cursor`` is the last event's time, as if nothing
had happened (gunicorn, Celery on Redis, the simulator over HTTP, the database of
DATABASE_URL)."""

from __future__ import annotations

import uuid

import pytest

from conftest import SA_CONFIGURATION, SIM_PROJECT_ID
from elements.framework.incremental import cursor_text, instant
from simulators.mixpanel import datagen
from simulators.mixpanel.testing import SimulatorProcess
from tests.live_platform import LivePlatform
from tests.test_bulk_live import FAST_BULK_ENV, Api, drop_keys, expected_activities, redis_url

pytestmark = pytest.mark.integration

DAYS = ("2024-01-01", "2024-01-08")
PER_DAY = 6000
REPEATS_PER_DAY = 250


@pytest.fixture(scope="module")
def live(simulator):
    url = redis_url()
    prefix = f"bulk-incr-{uuid.uuid4().hex[:8]}:"
    env = {**FAST_BULK_ENV, "CELERY_BROKER_URL": url, "CELERY_BROKER_KEY_PREFIX": prefix}
    with LivePlatform(mixpanel_base_url=simulator.base_url, extra_env=env) as platform:
        yield platform
    drop_keys(url, prefix)


def test_sigkill_mid_job_keeps_each_insert_id_once_and_the_cursor_right(live, sim):
    api = Api(live, live.create_instance(SA_CONFIGURATION)["token"])
    sim.configure(events_per_day=PER_DAY)
    # The export repeats the first events of every day at the end of that day's stream.
    days = [f"2024-01-0{d}" for d in range(1, 9)]
    repeats = [datagen.event(day, k, PER_DAY) for day in days for k in range(REPEATS_PER_DAY)]
    code, _, body = sim.request(
        "POST", f"/import?strict=1&project_id={SIM_PROJECT_ID}", repeats,
        auth=SimulatorProcess.sa_auth(),
    )  # fmt: skip
    assert code == 200, body
    sim.faults(latency_ms=250, path_prefix="/api/2.0/export")

    first = live.start_worker(concurrency=1)
    job = api.submit("select * from activities", **{"from": DAYS[0], "to": DAYS[1]})
    api.wait_records(job, 7000)
    first.kill()
    killed = api.status(job)
    total = PER_DAY * len(days)
    assert killed["status"] == "RUNNING" and 0 < killed["recordsCount"] < total, killed
    # The cursor committed with the last checkpoint: the latest event written so far.
    assert killed["cursor"] and killed["cursor"] < "2024-01-08T23:59:59Z"

    second = live.start_worker(concurrency=1)
    done = api.wait(job, timeout=120)
    assert done["status"] == "COMPLETED", (done, second.log_text()[-3000:])
    assert done["recordsCount"] == total and done["recordsFailedCount"] == 0
    # Every generated event once, in the export's order: the repeats were all dropped.
    assert api.ndjson(job, "activities") == expected_activities(*DAYS, PER_DAY)
    last = datagen.event(DAYS[1], PER_DAY - 1, PER_DAY)["properties"]["time"]
    assert done["cursor"] == cursor_text(instant(last))
    assert done["cursor"] >= killed["cursor"]
    second.stop()
