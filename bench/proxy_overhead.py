"""What the platform adds to one vendor call (issue 3 target: at most 1.5 ms at p50, c=1).

The Mixpanel simulator and the platform (gunicorn, PostgreSQL) on loopback. The same call,
``GET service-accounts``, straight to the simulator (baseline) and through the platform, at
concurrency 1 and 16. Prints p50/p99 of both, the added milliseconds and the throughput ratio.

    .venv/bin/python -m bench.proxy_overhead [--calls 3000]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url, run_load, summary  # noqa: E402
from elements.mixpanel.simulator.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

SA = {
    "username": "sim-admin.a1b2c3.mp-service-account",
    "password": "sim-sa-secret",
    "organization_id": 1001,
    "project_id": 2002,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())

    with SimulatorProcess() as sim, LivePlatform(mixpanel_base_url=sim.base_url) as live:
        instance = live.create_instance(SA)
        direct = ("/api/app/organizations/1001/service-accounts", {"Authorization": sim.sa_auth()})
        proxied = (
            "/elements/api-v2/hubs/general/service-accounts",
            {"Authorization": live.element_auth(instance["token"])},
        )
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        print(f"proxy_overhead: {args.calls} calls per run, {args.warmup} warm-up")
        print(f"{'conc':>4} {'target':<9} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
        for concurrency in (1, 16):
            base_lat, base_tput = run_load(
                sim_port, *direct, calls=args.calls, concurrency=concurrency, warmup=args.warmup
            )
            plat_lat, plat_tput = run_load(
                live.port, *proxied, calls=args.calls, concurrency=concurrency, warmup=args.warmup
            )
            b, p = summary(base_lat), summary(plat_lat)
            for label, stats, tput in (("direct", b, base_tput), ("platform", p, plat_tput)):
                print(
                    f"{concurrency:>4} {label:<9} {stats['p50']:>8.3f} {stats['p99']:>8.3f} "
                    f"{tput:>9.0f}"
                )
            print(
                f"{concurrency:>4} added p50 {p['p50'] - b['p50']:+.3f} ms, "
                f"p99 {p['p99'] - b['p99']:+.3f} ms; throughput ratio platform/direct "
                f"{plat_tput / base_tput:.2f}"
            )
        print("target: added p50 at concurrency 1 <= 1.5 ms")


if __name__ == "__main__":
    main()
