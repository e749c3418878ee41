"""A bulk job's fixed cost (issue 12 target: at most 0.3 s on the embedded broker, no worse than
0.03 s on Redis): the median, over ``--jobs`` jobs, of POST /bulk/query to COMPLETED on an export
with no events, on the embedded filesystem broker and on Redis (when REDIS_URL answers).

Beside it, the physical limit: the median round trip of the same empty export read straight from
the simulator (``bulk_throughput.direct_export``: one HTTP request, the bytes to a file). A job
cannot finish before the one vendor request it makes; everything above that is the platform's own
cost: the submit and status calls, the queue, the worker's claim, the job's database writes, and
the client's status poll (every 20 ms, as in ``bulk_throughput``: 10 ms of each figure on
average).

    .venv/bin/python -m bench.bulk_fixed_cost [--jobs 20]
"""

import argparse
import http.client
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bulk_throughput import FIRST_DAY, direct_export, submit_and_wait  # noqa: E402
from bench.common import database_url, redis_broker_env  # noqa: E402
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

QUERY = ("select * from activities", {"from": FIRST_DAY, "to": FIRST_DAY})


def job_latencies(live: LivePlatform, token: str, jobs: int) -> list[float]:
    worker = live.start_worker(concurrency=1, beat=False)
    try:
        auth = {"Authorization": live.element_auth(token)}
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=60)
        submit_and_wait(conn, auth, *QUERY)  # warm-up: a cold worker and connections
        took = []
        for _ in range(jobs):
            status, seconds = submit_and_wait(conn, auth, *QUERY)
            assert status["status"] == "COMPLETED" and status["recordsCount"] == 0, status
            took.append(seconds)
        conn.close()
        return took
    finally:
        worker.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())
    brokers = [("embedded", {})]
    redis_env = redis_broker_env("bench-fixed")
    if redis_env:
        brokers.append(("redis", redis_env))
    else:
        print("bulk_fixed_cost: Redis does not answer; embedded broker only")
    with SimulatorProcess() as sim:
        sim.configure(events_per_day=0)
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        direct_export(sim_port, gzip=True, last_day=FIRST_DAY)  # warm-up
        direct = statistics.median(
            direct_export(sim_port, gzip=True, last_day=FIRST_DAY)[1] for _ in range(args.jobs)
        )
        for name, env in brokers:
            with LivePlatform(mixpanel_base_url=sim.base_url, extra_env=env) as live:
                instance = live.create_instance(SA)
                took = job_latencies(live, instance["token"], args.jobs)
                print(
                    f"fixed cost, {name:<8} broker, database {live.database_url.split('://')[0]}: "
                    f"median {statistics.median(took):.3f} s, max {max(took):.3f} s over "
                    f"{len(took)} empty jobs; empty export straight from the vendor "
                    f"{direct * 1000:.1f} ms"
                )


if __name__ == "__main__":
    main()
