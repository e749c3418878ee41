"""What the platform adds to one vendor call (issue 3 target: at most 1.5 ms at p50, c=1).

The Mixpanel simulator and the platform (gunicorn, PostgreSQL) on loopback. The same call,
``GET service-accounts``, straight to the simulator (the baseline) and through the platform, at
concurrency 1 and 16. Prints p50/p99 of both, the added milliseconds and the throughput ratio.

At concurrency 1 it also prints the floor of this stack, measured in the same gunicorn
(``bench/floor_urls.py``): a constant Django view, and a Django view that only forwards the call
through the platform's connection pool. The platform's figure minus the forward's is the cost
of the platform's own work (auth, dispatch, validation, usage log).

    .venv/bin/python -m bench.proxy_overhead [--calls 3000]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SERVICE_ACCOUNTS_PATH, database_url, run_load, summary  # noqa: E402
from elements.mixpanel.simulator.testing import SA_CONFIGURATION as SA  # noqa: E402
from elements.mixpanel.simulator.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())

    with SimulatorProcess() as sim:
        floor_env = {
            "DJANGO_SETTINGS_MODULE": "bench.floor_settings",
            "BENCH_FORWARD_AUTHORIZATION": sim.sa_auth(),
        }
        with LivePlatform(mixpanel_base_url=sim.base_url, extra_env=floor_env) as live:
            run(sim, live, args)


def run(sim, live, args):
    instance = live.create_instance(SA)
    sim_port = int(sim.base_url.rsplit(":", 1)[1])
    direct = (sim_port, SERVICE_ACCOUNTS_PATH, sim.sa_auth())
    platform = (
        live.port,
        "/elements/api-v2/hubs/general/service-accounts",
        live.element_auth(instance["token"]),
    )
    floors = {
        "constant": (live.port, "/bench/constant", ""),
        "forward": (live.port, "/bench/forward", ""),
    }

    def measure(target, concurrency):
        port, path, auth = target
        latencies, throughput = run_load(
            port,
            path,
            {"Authorization": auth} if auth else {},
            calls=args.calls,
            concurrency=concurrency,
            warmup=args.warmup,
        )
        return summary(latencies), throughput

    print(f"proxy_overhead: {args.calls} calls per run, {args.warmup} warm-up")
    print(f"{'conc':>4} {'target':<9} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    for concurrency in (1, 16):
        rows = {"direct": measure(direct, concurrency)}
        if concurrency == 1:
            rows.update({name: measure(target, 1) for name, target in floors.items()})
        rows["platform"] = measure(platform, concurrency)
        for label, (stats, throughput) in rows.items():
            print(
                f"{concurrency:>4} {label:<9} {stats['p50']:>8.3f} {stats['p99']:>8.3f} "
                f"{throughput:>9.0f}"
            )
        (b, base_tput), (p, plat_tput) = rows["direct"], rows["platform"]
        print(
            f"{concurrency:>4} added p50 {p['p50'] - b['p50']:+.3f} ms, "
            f"p99 {p['p99'] - b['p99']:+.3f} ms; throughput ratio platform/direct "
            f"{plat_tput / base_tput:.2f}"
        )
        if concurrency == 1:
            constant, forward = rows["constant"][0], rows["forward"][0]
            print(
                f"   1 floor: a constant Django view adds {constant['p50'] - b['p50']:+.3f} ms, "
                f"a bare forward {forward['p50'] - b['p50']:+.3f} ms; the platform's own work "
                f"{p['p50'] - forward['p50']:+.3f} ms"
            )
    print("target: added p50 at concurrency 1 <= 1.5 ms")


if __name__ == "__main__":
    main()
