"""Shared pieces of the benchmarks: timing loops, percentiles, the services they run against."""

from __future__ import annotations

import http.client
import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulators.mixpanel.testing import SA_CONFIGURATION

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
# The vendor call of bench.proxy_overhead: the simulator's seeded organization's service accounts.
SERVICE_ACCOUNTS_PATH = (
    f"/api/app/organizations/{SA_CONFIGURATION['organization_id']}/service-accounts"
)


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_broker_env(prefix: str) -> dict[str, str] | None:
    """The platform's settings for the Redis broker of REDIS_URL (else the local one), under a
    key prefix of this run's own; None when Redis does not answer."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        import redis

        redis.Redis.from_url(url, socket_timeout=2).ping()
    except Exception:
        return None
    return {
        "CELERY_BROKER_URL": url,
        "CELERY_BROKER_KEY_PREFIX": f"{prefix}-{uuid.uuid4().hex[:8]}:",
    }


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's workers), read from /proc (Linux)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far. Unlike wall time, it hardly
    depends on what else the machine runs: the figure to compare on a loaded machine."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed_get(connection: http.client.HTTPConnection, path: str, headers: dict) -> float:
    """Milliseconds of one GET on a keep-alive connection, its answer read; it must be a 200."""
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")
    return elapsed


def run_load(port: int, path: str, headers: dict, *, calls: int, concurrency: int, warmup: int):
    """Latencies (ms) and throughput (calls/s) of ``calls`` GETs over keep-alive connections."""
    local = threading.local()

    def one(_):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        return timed_get(local.conn, path, headers)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(warmup)))
        started = time.perf_counter()
        latencies = list(pool.map(one, range(calls)))
        wall = time.perf_counter() - started
    return latencies, calls / wall


def interleaved_latencies(
    targets: dict, *, calls: int, warmup: int, block: int = 100
) -> dict[str, list[float]]:
    """Latencies (ms) of ``calls`` GETs to each of ``targets`` (name -> (port, path, headers)),
    one keep-alive connection each, in alternating blocks: ``block`` calls to the first target,
    ``block`` to the second, ... and round again.

    On a small shared VM the cost of a loopback hop drifts by tenths of a millisecond from one
    minute to the next; measured one after the other, targets would each get a different
    minute. Alternating blocks give every target the same minutes, while inside a block each
    call follows a call to the same target, as when each target is measured on its own (a
    call right after another target's could share the machine with that call's tail)."""
    connections = {
        name: http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for name, (port, _, _) in targets.items()
    }

    def timed(name: str) -> float:
        _, path, headers = targets[name]
        return timed_get(connections[name], path, headers)

    for name in targets:
        for _ in range(warmup):
            timed(name)
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    while any(len(values) < calls for values in latencies.values()):
        for name, values in latencies.items():
            values.extend(timed(name) for _ in range(min(block, calls - len(values))))
    for connection in connections.values():
        connection.close()
    return latencies


def summary(latencies: list[float]) -> dict:
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies),
    }
