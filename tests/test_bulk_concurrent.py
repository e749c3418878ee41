"""Many bulk jobs at once, against real processes: gunicorn, two ``celery -A platform_core
worker`` subprocesses at concurrency 1, the Mixpanel simulator over HTTP, and the database of
DATABASE_URL (PostgreSQL in CI), on Redis and on the embedded broker.

Four large jobs of one tenant are submitted together (4 x 30,000 events), then a small job of
another tenant. The jobs take turns (bulk/scheduling.py): the small job must complete before
any of the large ones and within a stated bound, and every job must end COMPLETED with exactly
its records, also when one worker is SIGKILLed in the middle.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date

import pytest

from conftest import SA_CONFIGURATION
from tests.live_platform import LivePlatform
from tests.test_bulk_live import Api, expected_activities
from tests.test_bulk_recovery import Platforms

pytestmark = pytest.mark.integration
logger = logging.getLogger(__name__)

EXPORT = "/api/2.0/export"
PER_DAY = 3000
BIG_JOBS = (  # 10 days each: 30,000 events, one 1000-event page at a time
    ("2024-01-01", "2024-01-10"),
    ("2024-02-01", "2024-02-10"),
    ("2024-03-01", "2024-03-10"),
    ("2024-04-01", "2024-04-10"),
)
SMALL_JOB = ("2024-05-01", "2024-05-01")
SLICE_SECONDS = 0.5
WORKER_ENV = {
    "BULK_JOB_SLICE_SECONDS": str(SLICE_SECONDS),
    "BULK_EXPORT_PAGE_RECORDS": "1000",
}
# The small job is queued behind four jobs on two workers: it waits for two slices at most
# (one per job ahead of it on each worker), plus the page a worker is reading when its slice
# ends, plus its own run (one export request). Generous for a busy 2-core CI machine.
SMALL_JOB_BOUND = 15.0


@pytest.fixture(scope="module")
def platforms(simulator):
    platforms = Platforms(simulator)
    yield platforms
    platforms.stop()


@pytest.fixture(autouse=True)
def stop_workers(platforms):
    yield
    platforms.stop_workers()


@pytest.fixture(params=["redis", "filesystem"])
def live(request, platforms):
    return platforms.get(request.param)


def tenant_api(live: LivePlatform, name: str) -> Api:
    """A new organization (tenant) of the live platform, with a Mixpanel instance of its own."""
    email = f"{name.lower()}-{time.monotonic_ns()}@x.test"
    tenant = json.loads(live.manage("create_organization", name, "--email", email, "--json"))
    auth = f"User {tenant['user_secret']}, Organization {tenant['organization_secret']}"
    body = json.dumps(
        {"element": {"key": "mixpanel"}, "name": name, "configuration": SA_CONFIGURATION}
    ).encode()
    api = Api(live, "", auth=auth)
    status, _, answer = api.request(
        "POST",
        "/elements/api-v2/instances",
        {"Content-Type": "application/json"},
        body,
    )
    assert status == 200, answer
    token = json.loads(answer)["token"]
    return Api(live, "", auth=f"User {tenant['user_secret']}, Element {token}")


def submit_all(live, sim):
    sim.configure(events_per_day=PER_DAY)
    # Each export request waits a little, as over a network: the jobs last seconds, not
    # fractions of one, on any machine.
    sim.faults(latency_ms=100, path_prefix=EXPORT)
    big_tenant, small_tenant = tenant_api(live, "Acme"), tenant_api(live, "Globex")
    workers = [live.start_worker(concurrency=1, beat=False, extra_env=WORKER_ENV) for _ in "ab"]
    big = [
        big_tenant.submit("select * from activities", **{"from": f, "to": t}) for f, t in BIG_JOBS
    ]
    return workers, big_tenant, big, small_tenant


def check_exactly_once(api: Api, jobs, ranges, timeout: float) -> list[dict]:
    done = []
    for job, (first, last) in zip(jobs, ranges, strict=True):
        status = api.wait(job, timeout=timeout)
        days = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
        expected = PER_DAY * days
        assert status["status"] == "COMPLETED", status
        assert status["recordsCount"] == expected and status["recordsFailedCount"] == 0, status
        assert api.ndjson(job, "activities") == expected_activities(first, last, PER_DAY)
        done.append(status)
    return done


def test_four_large_jobs_complete_and_a_small_job_of_another_tenant_is_not_starved(live, sim):
    workers, big_tenant, big, small_tenant = submit_all(live, sim)
    # Every large job has started, or waits behind the two running: the small one comes last.
    big_tenant.wait_records(big[0], 1000)
    submitted = time.monotonic()
    small = small_tenant.submit(
        "select * from activities", **{"from": SMALL_JOB[0], "to": SMALL_JOB[1]}
    )
    small_done = small_tenant.wait(small, timeout=SMALL_JOB_BOUND + 30)
    waited = time.monotonic() - submitted
    large_then = [big_tenant.status(job) for job in big]
    logger.info(
        "small job completed %.2f s after its submit; large jobs then: %s",
        waited,
        [(s["status"], s["recordsCount"]) for s in large_then],
    )
    assert small_done["status"] == "COMPLETED", (small_done, workers[0].log_text()[-3000:])
    assert waited <= SMALL_JOB_BOUND, f"the small job took {waited:.1f} s"
    assert all(s["status"] == "RUNNING" for s in large_then), large_then
    # Two workers, and all four large jobs have records: they took turns (each turn commits
    # at least one page), and the two queued ones got theirs before the small job.
    assert all(s["recordsCount"] > 0 for s in large_then), large_then
    assert small_tenant.ndjson(small, "activities") == expected_activities(*SMALL_JOB, PER_DAY)

    check_exactly_once(big_tenant, big, BIG_JOBS, timeout=180)


def test_a_worker_sigkilled_among_four_concurrent_jobs_leaves_every_record_once(live, sim):
    workers, big_tenant, big, small_tenant = submit_all(live, sim)
    for job in big[:2]:
        big_tenant.wait_records(job, 3000)
    workers[0].kill()
    small = small_tenant.submit(
        "select * from activities", **{"from": SMALL_JOB[0], "to": SMALL_JOB[1]}
    )
    live.start_worker(concurrency=1, beat=False, extra_env=WORKER_ENV)
    check_exactly_once(big_tenant, big, BIG_JOBS, timeout=180)
    check_exactly_once(small_tenant, [small], [SMALL_JOB], timeout=60)
