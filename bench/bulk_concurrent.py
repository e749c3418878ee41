"""Four bulk jobs at once on two workers (issue 12, item 5): aggregate throughput against the raw
stream, per-job completion times, worker memory, and how long a small job of another tenant
waits behind them.

In the same run:
- raw stream: the four jobs' exports (each ``--events`` events over 10 days, four different
  date ranges) downloaded straight from the simulator to files, four at once (one thread each,
  http.client, the same transfer encoding as the platform's requests);
- platform: the four jobs submitted together (POST /bulk/query) to two fresh ``celery worker``
  processes at concurrency 1, then a one-day ``limit 1000`` job of another tenant; each job
  timed from its submit to COMPLETED;
then the aggregate records/s of both sides (all records over the wall time from the first start
to the last end), their ratio, the p50 and p99 of the four jobs' completion times, the small
job's, and the workers' peak RSS (VmHWM of their pool children). One run per side: the machine
is shared, so read the figures as indications.

    .venv/bin/python -m bench.bulk_concurrent [--events 1000000] [--slice 2] [--broker embedded]
"""

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bulk_throughput import direct_export  # noqa: E402
from bench.common import database_url, percentile  # noqa: E402
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

DAYS = 10
RANGES = (
    ("2024-01-01", "2024-01-10"),
    ("2024-02-01", "2024-02-10"),
    ("2024-03-01", "2024-03-10"),
    ("2024-04-01", "2024-04-10"),
)
SMALL = ("2024-05-01", "2024-05-01")
TERMINAL = ("COMPLETED", "ERROR", "CANCELLED")


class Client:
    """One instance's bulk API on a keep-alive connection."""

    def __init__(self, live: LivePlatform, auth: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=600)
        self.headers = {"Authorization": auth}

    def submit(self, q: str, first: str, last: str) -> int:
        query = urllib.parse.urlencode({"q": q, "from": first, "to": last})
        self.conn.request("POST", f"/elements/api-v2/bulk/query?{query}", headers=self.headers)
        response = self.conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200, body
        return body["id"]

    def status(self, job_id: int) -> dict:
        self.conn.request("GET", f"/elements/api-v2/bulk/{job_id}/status", headers=self.headers)
        return json.loads(self.conn.getresponse().read())


def other_tenant(live: LivePlatform) -> str:
    """The element auth of a second organization's instance."""
    email = f"bench-{uuid.uuid4().hex[:8]}@x.test"
    tenant = json.loads(live.manage("create_organization", "Other", "--email", email, "--json"))
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=60)
    conn.request(
        "POST",
        "/elements/api-v2/instances",
        body=json.dumps(
            {"element": {"key": "mixpanel"}, "name": "other", "configuration": SA}
        ).encode(),
        headers={
            "Authorization": f"User {tenant['user_secret']}, "
            f"Organization {tenant['organization_secret']}",
            "Content-Type": "application/json",
        },
    )
    response = conn.getresponse()
    instance = json.loads(response.read())
    assert response.status == 200, instance
    return f"User {tenant['user_secret']}, Element {instance['token']}"


def raw_streams(port: int, gzip: bool, per_job: int) -> tuple[float, list[float]]:
    """The four exports downloaded to files at once: (wall seconds, each download's seconds)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(len(RANGES)) as pool:
        results = list(
            pool.map(lambda r: direct_export(port, gzip, first_day=r[0], last_day=r[1]), RANGES)
        )
    wall = time.perf_counter() - started
    for lines, _ in results:
        assert lines == per_job, (lines, per_job)
    return wall, [seconds for _, seconds in results]


def platform_jobs(live: LivePlatform, token: str, small_auth: str, per_job: int) -> dict:
    client = Client(live, live.element_auth(token))
    small_client = Client(live, small_auth)
    # Warm-up: one small job per worker, so no figure includes a cold process or connection.
    warm = [client.submit("select * from activities limit 1000", *SMALL) for _ in range(2)]
    while any(client.status(j)["status"] not in TERMINAL for j in warm):
        time.sleep(0.05)

    first_start = time.perf_counter()
    submitted = {}
    for first, last in RANGES:
        submitted[client.submit("select * from activities", first, last)] = time.perf_counter()
    small = small_client.submit("select * from activities limit 1000", *SMALL)
    small_submitted = time.perf_counter()
    took: dict[int, float] = {}
    small_took = None
    while len(took) < len(submitted) or small_took is None:
        for job, at in submitted.items():
            if job not in took:
                status = client.status(job)
                if status["status"] in TERMINAL:
                    assert status["status"] == "COMPLETED", status
                    assert status["recordsCount"] == per_job, (status, per_job)
                    took[job] = time.perf_counter() - at
        if small_took is None and small_client.status(small)["status"] in TERMINAL:
            small_took = time.perf_counter() - small_submitted
        time.sleep(0.02)
    wall = max(submitted[j] + t for j, t in took.items()) - first_start
    return {"wall": wall, "jobs": list(took.values()), "small": small_took}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000, help="events per job")
    parser.add_argument(
        "--slice", type=float, default=None, help="BULK_JOB_SLICE_SECONDS (default: the platform's)"
    )
    parser.add_argument("--encoding", choices=("gzip", "identity"), default="gzip")
    parser.add_argument("--no-encrypt", action="store_true", help="BULK_ENCRYPT_RESULTS=0")
    parser.add_argument(
        "--broker",
        choices=("redis", "embedded"),
        default="redis",
        help="redis (REDIS_URL; the embedded broker when it does not answer) or embedded",
    )
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())
    gzip = args.encoding == "gzip"
    env = {
        "BULK_ENCRYPT_RESULTS": "0" if args.no_encrypt else "1",
        "BULK_EXPORT_GZIP": "1" if gzip else "0",
    }
    if args.slice is not None:
        env["BULK_JOB_SLICE_SECONDS"] = str(args.slice)
    broker = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        if args.broker == "embedded":
            raise RuntimeError("the embedded broker was asked for")
        import redis

        redis.Redis.from_url(broker, socket_timeout=2).ping()
        prefix = f"bench-concurrent-{uuid.uuid4().hex[:8]}:"
        env.update({"CELERY_BROKER_URL": broker, "CELERY_BROKER_KEY_PREFIX": prefix})
    except Exception:
        broker = "embedded filesystem broker"

    with (
        SimulatorProcess() as sim,
        LivePlatform(mixpanel_base_url=sim.base_url, extra_env=env) as live,
    ):
        sim.configure(events_per_day=args.events // DAYS)
        per_job = args.events // DAYS * DAYS
        port = int(sim.base_url.rsplit(":", 1)[1])
        token = live.create_instance(SA)["token"]
        small_auth = other_tenant(live)
        workers = [live.start_worker(concurrency=1, beat=False) for _ in range(2)]
        slice_text = args.slice if args.slice is not None else "default"
        print(
            f"bulk_concurrent: 4 jobs x {per_job:,} events on 2 workers (concurrency 1), broker "
            f"{broker.split('@')[-1]}, database {live.database_url.split('://')[0]}, results "
            f"encrypted: {not args.no_encrypt}, export encoding: {args.encoding}, "
            f"BULK_JOB_SLICE_SECONDS: {slice_text}"
        )
        direct_export(port, gzip, first_day=SMALL[0], last_day=SMALL[1])  # warm-up
        raw_wall, raw_each = raw_streams(port, gzip, per_job)
        jobs = platform_jobs(live, token, small_auth, per_job)
        peak_mb = max(max(w.peak_rss_kb().values(), default=0) for w in workers) / 1024
        total = per_job * len(RANGES)
        raw_rate, job_rate = total / raw_wall, total / jobs["wall"]
        print(
            f"raw stream, 4 at once  {total:>11,} records  {raw_wall:7.2f} s  {raw_rate:>11,.0f}/s"
            f"  (each {min(raw_each):.2f}-{max(raw_each):.2f} s)"
        )
        print(
            f"platform, 4 jobs       {total:>11,} records  {jobs['wall']:7.2f} s  "
            f"{job_rate:>11,.0f}/s  ratio {job_rate / raw_rate:4.2f}"
        )
        print(
            f"per job, submit to COMPLETED: p50 {percentile(jobs['jobs'], 50):.2f} s, "
            f"p99 {percentile(jobs['jobs'], 99):.2f} s; small job of another tenant "
            f"(1000 records, submitted after them): {jobs['small']:.2f} s"
        )
        print(f"worker peak RSS {peak_mb:.1f} MB")


if __name__ == "__main__":
    main()
