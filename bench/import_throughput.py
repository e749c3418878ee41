"""Import of any size (target: ratio at least 0.8).

200,000 events through the platform's ``import_events``, 20,000 per request (the platform splits
each into 2000-event vendor requests sent with bounded concurrency), against posting the same
events, pre-encoded in 2000-event batches, straight to the simulator, one after another, in the
same run. The baseline's bodies are encoded before its clock starts: it is the wire and the
vendor alone. Prints events/s, the ratio and p50/p99 of each side's requests.

    .venv/bin/python -m bench.import_throughput [--events 200000] [--per-request 20000]
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

from bench.common import database_url, percentile  # noqa: E402
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


def direct_import(sim, sim_port: int, events: list[dict]) -> tuple[float, list[float]]:
    """Seconds to post ``events``, pre-encoded in 2000-event batches, straight to the
    simulator; and each batch request's milliseconds."""
    bodies = [
        json.dumps(events[start : start + 2000], separators=(",", ":")).encode()
        for start in range(0, len(events), 2000)
    ]
    headers = {"Content-Type": "application/json", "Authorization": sim.sa_auth()}
    conn = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=600)
    latencies = []
    imported = 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        conn.request("POST", "/import?strict=1&project_id=2002", body=body, headers=headers)
        response = conn.getresponse()
        imported += json.loads(response.read())["num_records_imported"]
        latencies.append((time.perf_counter() - sent) * 1000)
    seconds = time.perf_counter() - started
    conn.close()
    assert imported == len(events), imported
    return seconds, latencies


def platform_import(live, instance, events: list[dict], per_request: int):
    """Seconds to import ``events`` through ``import_events``, ``per_request`` events a call
    (bodies encoded before the clock starts), each call's milliseconds, and a call's size."""
    bodies = [
        json.dumps(
            {"strict": "1", "events": events[start : start + per_request]}, separators=(",", ":")
        ).encode()
        for start in range(0, len(events), per_request)
    ]
    headers = {"Authorization": live.element_auth(instance["token"])}
    latencies = []
    imported = 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        status, data = post(live.port, f"/mixpanel/import_events/{instance['id']}", body, headers)
        latencies.append((time.perf_counter() - sent) * 1000)
        assert status == 200, (status, data[:300])
        result = json.loads(data)
        assert result["status"] == "OK", data[:300]
        imported += result["num_records_imported"]
    seconds = time.perf_counter() - started
    assert imported == len(events), imported
    return seconds, latencies, len(bodies[0])


def _p50_p99(milliseconds: list[float]) -> str:
    return f"p50 {percentile(milliseconds, 50):6.1f} ms p99 {percentile(milliseconds, 99):6.1f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-request", type=int, default=20_000, help="events per platform call")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())

    with SimulatorProcess() as sim, LivePlatform(mixpanel_base_url=sim.base_url) as live:
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        instance = live.create_instance(SA)
        direct, platform, direct_ms, platform_ms = [], [], [], []
        for round_ in range(args.repeat):
            # The simulator keeps what it imported: each side starts from a clean one (measured:
            # a 2000-event request took ~0.7 ms longer right after 200,000 others).
            sim.reset()
            seconds, latencies = direct_import(
                sim, sim_port, make_events(args.events, f"d{round_}")
            )
            direct.append(seconds)
            direct_ms += latencies
            events = make_events(args.events, f"p{round_}")
            sim.reset()
            seconds, latencies, size = platform_import(live, instance, events, args.per_request)
            platform.append(seconds)
            platform_ms += latencies
            print(
                f"round {round_ + 1}: direct {direct[-1]:.2f} s, platform {seconds:.2f} s, "
                f"ratio {direct[-1] / seconds:.2f}"
            )
        d, p = statistics.median(direct), statistics.median(platform)
        print(
            f"import_throughput: {args.events} events, {args.per_request} per platform call "
            f"({size / 1e6:.1f} MB), medians of {args.repeat} rounds"
        )
        print(
            f"direct   pre-encoded 2000-event batches: {d:6.2f} s {args.events / d:9.0f} events/s"
            f"  batch {_p50_p99(direct_ms)}"
        )
        print(
            f"platform import_events:                  {p:6.2f} s {args.events / p:9.0f} events/s"
            f"  call  {_p50_p99(platform_ms)}"
        )
        print(f"ratio platform/direct: {d / p:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
