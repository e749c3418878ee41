"""Import of any size (target: ratio at least 0.8).

200,000 events through the platform's ``import_events``, 20,000 per request (the platform splits
each into 2000-event vendor requests sent with bounded concurrency), against posting the same
events, pre-encoded in 2000-event batches, straight to the simulator, one after another, in the
same run. The baseline's bodies are encoded before its clock starts: it is the wire and the
vendor alone. Both sides post one request after another on one keep-alive connection, as a
user's client would. Posting the baseline's batches two or four at a time was measured no
faster (the simulator is one Python process), so one at a time is the limit a user sees.

Rounds alternate the sides on a freshly reset simulator; on a shared, loaded machine the
median of the rounds' own ratios (each pairs measurements taken seconds apart) is steadier
than the ratio of the medians, and both are printed, with events/s and p50/p99 of each
side's requests. ``--compare-root`` adds the platform run from another checkout (the code
before a change) as a third side of every round, so that before and after are measured in
the same conditions.

    .venv/bin/python -m bench.import_throughput [--events 200000] [--per-request 20000]
        [--repeat 5] [--compare-root ../main]
"""

import argparse
import contextlib
import http.client
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, database_url, percentile, process_tree  # noqa: E402
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
    headers = {
        "Content-Type": "application/json",
        "Authorization": live.element_auth(instance["token"]),
    }
    path = f"/mixpanel/import_events/{instance['id']}"
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=600)
    latencies = []
    imported = 0
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        latencies.append((time.perf_counter() - sent) * 1000)
        assert response.status == 200, (response.status, data[:300])
        result = json.loads(data)
        assert result["status"] == "OK", data[:300]
        imported += result["num_records_imported"]
    seconds = time.perf_counter() - started
    conn.close()
    assert imported == len(events), imported
    return seconds, latencies, len(bodies[0])


def _p50_p99(milliseconds: list[float]) -> str:
    return f"p50 {percentile(milliseconds, 50):6.1f} ms p99 {percentile(milliseconds, 99):6.1f} ms"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--per-request", type=int, default=20_000, help="events per platform call")
    parser.add_argument("--repeat", type=int, default=5, help="alternating rounds; medians")
    parser.add_argument(
        "--compare-root",
        type=Path,
        help="also run the platform from this checkout (e.g. the code before a change)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())

    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(SimulatorProcess())
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        platforms = {"platform": stack.enter_context(LivePlatform(mixpanel_base_url=sim.base_url))}
        if args.compare_root:
            platforms["compared"] = stack.enter_context(
                LivePlatform(mixpanel_base_url=sim.base_url, root=args.compare_root.resolve())
            )
        instances = {side: live.create_instance(SA) for side, live in platforms.items()}
        on_linux = Path("/proc/self/stat").exists()
        processes = {side: process_tree(live.proc.pid) for side, live in platforms.items()}
        processes["simulator"] = [sim.proc.pid]
        # CPU seconds per side: the simulator's on every side, the platform's on its own.
        cpu = {"direct": [], **{side: [] for side in platforms}}
        sim_cpu = {side: [] for side in cpu}
        seconds = {"direct": [], **{side: [] for side in platforms}}
        milliseconds = {side: [] for side in seconds}
        ratios = {side: [] for side in platforms}
        size = 0
        for round_ in range(args.repeat):
            # The simulator keeps what it imported: each side starts from a clean one (measured:
            # a 2000-event request took ~0.7 ms longer right after 200,000 others).
            sim.reset()
            events = make_events(args.events, f"d{round_}")
            sim_before = cpu_seconds(processes["simulator"]) if on_linux else 0
            took, latencies = direct_import(sim, sim_port, events)
            if on_linux:
                sim_cpu["direct"].append(cpu_seconds(processes["simulator"]) - sim_before)
            seconds["direct"].append(took)
            milliseconds["direct"] += latencies
            line = [f"round {round_ + 1}: direct {took:.2f} s"]
            for side, live in platforms.items():
                events = make_events(args.events, f"{side[0]}{round_}")
                sim.reset()
                if on_linux:
                    before = cpu_seconds(processes[side]), cpu_seconds(processes["simulator"])
                took, latencies, size = platform_import(
                    live, instances[side], events, args.per_request
                )
                if on_linux:
                    cpu[side].append(cpu_seconds(processes[side]) - before[0])
                    sim_cpu[side].append(cpu_seconds(processes["simulator"]) - before[1])
                seconds[side].append(took)
                milliseconds[side] += latencies
                ratios[side].append(seconds["direct"][-1] / took)
                line.append(f"{side} {took:.2f} s (ratio {ratios[side][-1]:.2f})")
            print(", ".join(line))
        if args.compare_root:
            print(f"compared: the platform run from {args.compare_root}")
        print(
            f"import_throughput: {args.events} events, {args.per_request} per platform call "
            f"({size / 1e6:.1f} MB), medians of {args.repeat} rounds"
        )

        def per_call_ms(round_seconds: list[float]) -> float:
            """A round's median CPU seconds as milliseconds per platform call's events."""
            return statistics.median(round_seconds) * 1000 * args.per_request / args.events

        d = statistics.median(seconds["direct"])
        print(
            f"direct   pre-encoded 2000-event batches: {d:6.2f} s {args.events / d:9.0f} events/s"
            f"  batch {_p50_p99(milliseconds['direct'])}"
        )
        if on_linux:
            print(
                f"direct   CPU per {args.per_request} events: simulator "
                f"{per_call_ms(sim_cpu['direct']):.0f} ms"
            )
        for side in platforms:
            p = statistics.median(seconds[side])
            print(
                f"{side:8s} import_events:{' ' * 18}{p:6.2f} s {args.events / p:9.0f} events/s"
                f"  call  {_p50_p99(milliseconds[side])}"
            )
            if on_linux:
                print(
                    f"{side:8s} CPU per {args.per_request} events: platform "
                    f"{per_call_ms(cpu[side]):.0f} ms, "
                    f"simulator {per_call_ms(sim_cpu[side]):.0f} ms"
                )
            print(
                f"ratio {side}/direct: {d / p:.2f} of the medians, "
                f"{statistics.median(ratios[side]):.2f} the median of the rounds' "
                f"(range {min(ratios[side]):.2f}-{max(ratios[side]):.2f}; target >= 0.8)"
            )


if __name__ == "__main__":
    main()
