"""Element calls while the vendor misbehaves (issue 8): does the platform stay up?

gunicorn as shipped (gunicorn.conf.py: its workers and threads, VENDOR_CALL_DEADLINE and the
per-host bound at their defaults) in front of the Mixpanel simulator, whose fault switches make
10 % of vendor calls fail with a 503 and 1 % hang (they never answer). ``--calls`` element calls
(``GET service-accounts``, an idempotent call: 503s are retried) at ``--concurrency``, while
one more client asks for ``GET /elements/api-v2/instances`` every 50 ms. Prints:

- the element calls' statuses and what the failed ones said, and how many were a platform 5xx
  other than 502/503/504 (target: 0);
- their p50/p99 and the slowest answer (target: inside the deadline);
- p50/p99/max of ``GET /instances`` during the run (target: p99 under 100 ms).

    .venv/bin/python -m bench.vendor_faults [--calls 20000] [--concurrency 32]

A hung call takes the whole deadline (25 s), so each client spends most of the run waiting on
one: the run takes about calls x hang-rate x deadline / concurrency (150 s for the defaults).
``--deadline`` sets another VENDOR_CALL_DEADLINE, for a quick smoke run only.
"""

import argparse
import http.client
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SERVICE_ACCOUNTS_PATH, database_url, summary  # noqa: E402
from platform_core.conf import DEFAULTS  # noqa: E402
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

ELEMENT_CALL = "/elements/api-v2/hubs/general/service-accounts"
INSTANCES = "/elements/api-v2/instances"
GATEWAY_STATUSES = {502, 503, 504}  # the vendor's failures, passed on as the contract says


class Client:
    """One keep-alive connection to the platform. A connection the server closed while idle is
    opened again once (that is the client's business, not a failure of the call)."""

    def __init__(self, port: int):
        self.port = port
        self.connection = None

    def get(self, path: str, headers: dict) -> tuple[int, float, bytes]:
        """(status, milliseconds, body) of one GET, its answer read."""
        for fresh in (False, True):
            if self.connection is None or fresh:
                if self.connection is not None:
                    self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            started = time.perf_counter()
            try:
                self.connection.request("GET", path, headers=headers)
                response = self.connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                if fresh:
                    raise
                continue
            return response.status, (time.perf_counter() - started) * 1000, body
        raise AssertionError("unreachable")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--error-rate", type=float, default=0.10)
    parser.add_argument("--hang-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--deadline", type=float, help="VENDOR_CALL_DEADLINE (default: shipped)")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())
    env = {"VENDOR_CALL_DEADLINE": str(args.deadline)} if args.deadline else {}
    with (
        SimulatorProcess() as sim,
        LivePlatform(mixpanel_base_url=sim.base_url, extra_env=env) as live,
    ):
        run(sim, live, args)


def run(sim, live, args):
    deadline = args.deadline or DEFAULTS["VENDOR_CALL_DEADLINE"]
    instance = live.create_instance(SA)
    element_auth = {"Authorization": live.element_auth(instance["token"])}
    platform_auth = {"Authorization": live.platform_auth}
    # The hang switch first: it draws first, and the 5xx switch fires on its share of the rest.
    sim.faults(
        path_prefix=SERVICE_ACCOUNTS_PATH,
        hang={"seconds": 4 * deadline, "probability": args.hang_rate},
        seed=args.seed,
    )
    sim.faults(
        path_prefix=SERVICE_ACCOUNTS_PATH,
        status={"status": 503, "probability": args.error_rate / (1 - args.hang_rate)},
    )
    print(
        f"vendor_faults: {args.calls} element calls at concurrency {args.concurrency}; the "
        f"vendor fails {args.error_rate:.0%} with 503 and hangs {args.hang_rate:.0%}; "
        f"deadline {deadline:g} s; gunicorn as shipped"
    )

    running = threading.Event()
    running.set()
    instance_latencies: list[float] = []
    instance_statuses: Counter = Counter()

    def watch_instances():
        client = Client(live.port)
        while running.is_set():
            status, ms, _ = client.get(INSTANCES, platform_auth)
            instance_statuses[status] += 1
            instance_latencies.append(ms)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_instances, daemon=True)
    local = threading.local()

    def element_call(_):
        if not hasattr(local, "client"):
            local.client = Client(live.port)
        return local.client.get(ELEMENT_CALL, element_auth)

    started = time.perf_counter()
    watcher.start()
    with ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(element_call, range(args.calls)))
    running.clear()
    watcher.join()
    wall = time.perf_counter() - started

    statuses = Counter(status for status, _, _ in results)
    latencies = [ms for _, ms, _ in results]
    # What the failed calls said, without the request id and the waited seconds' digits.
    messages = Counter(
        (status, re.sub(r"\d+\.\d s", "N s", json.loads(body)["message"]))
        for status, _, body in results
        if status != 200
    )
    other_5xx = sum(n for status, n in statuses.items() if status >= 500) - sum(
        statuses[status] for status in GATEWAY_STATUSES
    )
    calls = summary(latencies)
    seen = summary(instance_latencies)
    breakdown = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"run: {wall:.0f} s, {args.calls / wall:.0f} element calls/s")
    print(f"element calls by status: {breakdown}")
    for (status, message), n in messages.most_common(6):
        print(f"  {n:>6} x {status} {message}")
    print(f"platform 5xx other than 502/503/504: {other_5xx}   (target 0)")
    print(
        f"element calls: p50 {calls['p50']:.1f} ms, p99 {calls['p99']:.1f} ms, slowest "
        f"{max(latencies) / 1000:.2f} s   (target: slowest inside the {deadline:g} s deadline)"
    )
    print(
        f"GET /instances during the run: {len(instance_latencies)} calls "
        f"({', '.join(f'{s}: {n}' for s, n in sorted(instance_statuses.items()))}), "
        f"p50 {seen['p50']:.1f} ms, p99 {seen['p99']:.1f} ms, max {max(instance_latencies):.1f} ms"
        f"   (target: p99 < 100 ms)"
    )
    vendor_calls = sim.faults()
    print(
        "simulator: "
        + ", ".join(f"{fault['kind']} fired {fault['hits']} times" for fault in vendor_calls)
    )


if __name__ == "__main__":
    main()
