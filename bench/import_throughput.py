"""Import of any size (issue 3 target: ratio at least 0.7).

200,000 events through the platform's ``import_events`` (one call; the platform splits it into
2000-event requests sent with bounded concurrency) against posting the same events in
2000-event batches straight to the simulator, one after another, in the same run.

    .venv/bin/python -m bench.import_throughput [--events 200000]
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url  # noqa: E402
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402


def make_events(n: int, run: str) -> list[dict]:
    base = int(time.time()) - 3600
    return [
        {
            "event": "Bench event",
            "properties": {
                "time": base + (i % 3000),
                "distinct_id": f"user-{i % 5000}",
                "$insert_id": f"{run}-{i}",
                "plan": "pro" if i % 3 else "free",
                "amount": i % 97,
            },
        }
        for i in range(n)
    ]


def post(port: int, path: str, body: bytes, headers: dict, timeout=600) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def direct_import(sim, sim_port: int, events: list[dict]) -> float:
    """Seconds to post ``events`` in 2000-event batches straight to the simulator."""
    conn = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=600)
    started = time.perf_counter()
    imported = 0
    for start in range(0, len(events), 2000):
        body = json.dumps(events[start : start + 2000], separators=(",", ":")).encode()
        conn.request(
            "POST",
            "/import?strict=1&project_id=2002",
            body=body,
            headers={"Content-Type": "application/json", "Authorization": sim.sa_auth()},
        )
        response = conn.getresponse()
        imported += json.loads(response.read())["num_records_imported"]
    seconds = time.perf_counter() - started
    conn.close()
    assert imported == len(events), imported
    return seconds


def platform_import(live, instance, events: list[dict]) -> tuple[float, int]:
    """Seconds for one import_events call with every event, and the request size."""
    body = json.dumps({"strict": "1", "events": events}, separators=(",", ":")).encode()
    started = time.perf_counter()
    status, data = post(
        live.port,
        f"/mixpanel/import_events/{instance['id']}",
        body,
        {"Authorization": live.element_auth(instance["token"])},
    )
    seconds = time.perf_counter() - started
    result = json.loads(data)
    assert status == 200 and result["num_records_imported"] == len(events), (status, data[:300])
    return seconds, len(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())

    with SimulatorProcess() as sim, LivePlatform(mixpanel_base_url=sim.base_url) as live:
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        instance = live.create_instance(SA)
        direct, platform = [], []
        for round_ in range(args.repeat):
            sim.reset()  # the simulator keeps a bounded sample of imported events; start clean
            direct.append(direct_import(sim, sim_port, make_events(args.events, f"d{round_}")))
            seconds, size = platform_import(live, instance, make_events(args.events, f"p{round_}"))
            platform.append(seconds)
            print(
                f"round {round_ + 1}: direct {direct[-1]:.2f} s, platform {seconds:.2f} s, "
                f"ratio {direct[-1] / seconds:.2f}"
            )
        d, p = statistics.median(direct), statistics.median(platform)
        print(f"import_throughput: {args.events} events ({size / 1e6:.1f} MB request), medians")
        print(f"direct   2000-event batches: {d:7.2f} s  {args.events / d:9.0f} events/s")
        print(f"platform import_events:      {p:7.2f} s  {args.events / p:9.0f} events/s")
        print(f"ratio platform/direct: {d / p:.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
