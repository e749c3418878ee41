"""Bulk download throughput and worker memory (issue 12 targets: ratio at least 0.6 against the
raw stream, worker peak RSS under 200 MB and flat across sizes).

For each broker setup (``--setup``: Redis + PostgreSQL, and the embedded filesystem broker +
SQLite, the bare-machine default) and each size, in the same run:
- raw stream: the export as a user can see it at best. The simulator's own export bytes are
  generated once per UTC day, written to files (gzipped once), and served by a static file
  server on loopback (``bench.static_export``: sendfile, no per-request generation). The direct
  side downloads those days with a plain streaming HTTP client (http.client, one keep-alive
  connection, one request per day as a job makes them) to a file, gunzipping when gzip, counting
  lines with ``bytes.count``: no parsing;
- platform: a bulk job (POST /bulk/query) run by a fresh ``celery worker`` (concurrency 1), timed
  from the submit to COMPLETED, i.e. to a complete, committed, encrypted NDJSON result; its
  export requests go to the same static server (``MIXPANEL_DATA_BASE_URL``), every other Mixpanel
  call to the simulator;
then records/s of both as p50 and p99 over ``--repeat`` runs each (the ratio of the medians, and
of the best runs: this machine is shared and its timings wander), and the worker's peak RSS
(VmHWM of its pool child).
The same for profiles: engage pages straight from the simulator against a ``users`` job.
Both sides are warmed up first (one day), and each fresh worker runs a small job before the
measured ones, so that no figure includes a cold process or connection. Every measured run
starts after an ``os.sync()``: a job keeps its result (~240 MB of parts at 1,000,000 events),
and without it the kernel writes the previous runs' parts back during the next one (four runs
of a job in a row slowed from 2.8 to 4.4 s in an in-process test); the raw stream's file is
deleted at once, so it never paid for that.

    .venv/bin/python -m bench.bulk_throughput [--events 100000 1000000] [--profiles 20000 200000]
        [--setup redis embedded] [--repeat 5] [--encoding gzip|identity]
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url, percentile, redis_broker_env  # noqa: E402
from bench.static_export import (  # noqa: E402
    EXPORT_PATH,
    StaticExportProcess,
    write_export_files,
)
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

DAYS = 10
FIRST_DAY = "2024-01-01"
LAST_DAY = "2024-01-10"
EXPORT_DAYS = [(date.fromisoformat(FIRST_DAY) + timedelta(days=i)).isoformat() for i in range(DAYS)]


def direct_export(
    port: int, gzip: bool, last_day: str = LAST_DAY, first_day: str = FIRST_DAY
) -> tuple[int, float]:
    """Stream the export to a file; (lines, seconds)."""
    query = urllib.parse.urlencode(
        {"from_date": first_day, "to_date": last_day, "project_id": SA["project_id"]}
    )
    headers = {"Authorization": SimulatorProcess.sa_auth()}
    if gzip:
        headers["Accept-Encoding"] = "gzip"
    with tempfile.NamedTemporaryFile(prefix="bench-export-") as out:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", f"/api/2.0/export?{query}", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.status
        if gzip:
            import zlib

            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            newlines = 0
            while chunk := response.read(256 * 1024):
                data = inflate.decompress(chunk)
                newlines += data.count(b"\n")
                out.write(data)
        else:
            newlines = 0
            while chunk := response.read(256 * 1024):
                newlines += chunk.count(b"\n")
                out.write(chunk)
        out.flush()
        seconds = time.perf_counter() - started
        conn.close()
    return newlines, seconds


def raw_export(port: int, gzip: bool, days: list[str] = EXPORT_DAYS) -> tuple[int, float]:
    """The raw-stream baseline: download each day's export from the static server over one
    keep-alive connection, to a file (gunzipped when gzip), no parsing; (lines, seconds)."""
    import zlib

    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    newlines = 0
    with tempfile.NamedTemporaryFile(prefix="bench-raw-export-") as out:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for day in days:
            query = urllib.parse.urlencode({"from_date": day, "to_date": day})
            conn.request("GET", f"{EXPORT_PATH}?{query}", headers=headers)
            response = conn.getresponse()
            assert response.status == 200, response.status
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
            while chunk := response.read(256 * 1024):
                if inflate is not None:
                    chunk = inflate.decompress(chunk)
                newlines += chunk.count(b"\n")
                out.write(chunk)
        out.flush()
        seconds = time.perf_counter() - started
        conn.close()
    return newlines, seconds


def direct_profiles(port: int) -> tuple[int, float]:
    """Page through engage with session_id, each page written to a file; (profiles, seconds)."""
    with tempfile.NamedTemporaryFile(prefix="bench-engage-") as out:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        page, session, count = 0, None, 0
        while True:
            form = {"page": page, "page_size": 1000}
            if session:
                form["session_id"] = session
            conn.request(
                "POST",
                f"/api/query/engage?project_id={SA['project_id']}",
                body=urllib.parse.urlencode(form),
                headers={
                    "Authorization": SimulatorProcess.sa_auth(),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == 200, body
            session = body["session_id"]
            for record in body["results"]:
                out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            count += len(body["results"])
            total = body.get("total", 0)
            page += 1
            if not body["results"] or page * 1000 >= total:
                break
        seconds = time.perf_counter() - started
        conn.close()
    return count, seconds


def submit_and_wait(conn, auth: dict, q: str, params: dict) -> tuple[dict, float]:
    query = urllib.parse.urlencode({"q": q, **params})
    started = time.perf_counter()
    conn.request("POST", f"/elements/api-v2/bulk/query?{query}", headers=auth)
    response = conn.getresponse()
    job = json.loads(response.read())
    assert response.status == 200, job
    while True:
        conn.request("GET", f"/elements/api-v2/bulk/{job['id']}/status", headers=auth)
        status = json.loads(conn.getresponse().read())
        if status["status"] in ("COMPLETED", "ERROR", "CANCELLED"):
            return status, time.perf_counter() - started
        time.sleep(0.02)


def run_job(
    live: LivePlatform,
    token: str,
    q: str,
    params: dict,
    expected: int,
    warmup: tuple[str, dict],
    repeat: int,
):
    """A fresh worker runs a small warm-up job, then the measured one ``repeat`` times: (the
    seconds of each from submit to COMPLETED, the worker's peak RSS in MB over all of them,
    seconds to download the last NDJSON result)."""
    worker = live.start_worker(concurrency=1, beat=False)
    try:
        auth = {"Authorization": live.element_auth(token)}
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=600)
        status, _ = submit_and_wait(conn, auth, *warmup)
        assert status["status"] == "COMPLETED", status
        times = []
        for _ in range(repeat):
            os.sync()  # the module docstring says why
            status, took = submit_and_wait(conn, auth, q, params)
            assert status["status"] == "COMPLETED", status
            assert status["recordsCount"] == expected, (status, expected)
            times.append(took)
        peak_kb = max(worker.peak_rss_kb().values())
        # Read the result back once (streamed), to show the download side too.
        started = time.perf_counter()
        conn.request(
            "GET",
            f"/elements/api-v2/bulk/{status['id']}/{status['objectName']}",
            headers={**auth, "Accept": "application/x-ndjson"},
        )
        response = conn.getresponse()
        lines = 0
        while chunk := response.read(256 * 1024):
            lines += chunk.count(b"\n")
        assert lines == expected, (lines, expected)
        download = time.perf_counter() - started
        conn.close()
        if os.environ.get("BENCH_WORKER_LOG"):
            print("\n".join(x for x in worker.log_text().splitlines() if "bulk" in x))
        return times, peak_kb / 1024, download
    finally:
        worker.stop()


def report(label: str, n: int, direct: list[float], job: list[float], rss_mb: float, dl: float):
    """One line: records/s at the median and the 99th percentile (the slowest of a few runs) of
    each side, the ratio of the medians and of the best runs."""
    d50, d99, j50, j99 = (
        percentile(direct, 50),
        percentile(direct, 99),
        percentile(job, 50),
        percentile(job, 99),
    )
    print(
        f"{label:<20} {n:>9,}  raw p50 {n / d50:>9,.0f}/s ({d50:5.2f} s) p99 {d99:5.2f} s  "
        f"job p50 {n / j50:>9,.0f}/s ({j50:5.2f} s) p99 {j99:5.2f} s  "
        f"ratio p50 {d50 / j50:4.2f} best {min(direct) / min(job):4.2f}  "
        f"worker peak RSS {rss_mb:5.1f} MB  (NDJSON download {n / dl:,.0f}/s)",
        flush=True,
    )


def run_setup(setup: str, args, files: Path, sim: SimulatorProcess, static: StaticExportProcess):
    sim_port = int(sim.base_url.rsplit(":", 1)[1])
    gzip = args.encoding == "gzip"
    env = {
        "BULK_ENCRYPT_RESULTS": "0" if args.no_encrypt else "1",
        "BULK_EXPORT_GZIP": "1" if gzip else "0",
        # The export alone goes to the static files; everything else to the simulator.
        "MIXPANEL_DATA_BASE_URL": static.base_url,
    }
    if setup == "redis":
        broker = redis_broker_env("bench-bulk")
        if broker is None:
            print("bulk_throughput: Redis does not answer: setup 'redis' skipped")
            return
        env.update(broker)
        os.environ["DATABASE_URL"] = database_url()
    else:
        os.environ["DATABASE_URL"] = "sqlite:"  # LivePlatform: a SQLite file of its own
    root = Path(args.platform_root) if args.platform_root else None
    with LivePlatform(
        mixpanel_base_url=sim.base_url, extra_env=env, **({"root": root} if root else {})
    ) as live:
        instance = live.create_instance(SA)
        print(
            f"bulk_throughput: setup {setup}: broker "
            f"{env.get('CELERY_BROKER_URL', 'embedded filesystem').split('@')[-1]}, database "
            f"{live.database_url.split('://')[0]}, results encrypted: {not args.no_encrypt}, "
            f"export encoding (both sides): {args.encoding}, {args.repeat} runs per side, "
            f"platform from {live.root}",
            flush=True,
        )
        for n in args.events:
            sim.configure(events_per_day=n // DAYS)
            for stale in files.glob("*.ndjson*"):
                stale.unlink()
            size = write_export_files(
                files, sim_port, SimulatorProcess.sa_auth(), SA["project_id"], EXPORT_DAYS
            )
            raw_export(static.port, gzip, days=EXPORT_DAYS[:1])  # warm-up, as for the job
            direct = []
            for _ in range(args.repeat):
                os.sync()  # as before each job
                lines, took = raw_export(static.port, gzip)
                assert lines == n, (lines, n)
                direct.append(took)
            times, rss, dl = run_job(
                live,
                instance["token"],
                "select * from activities",
                {"from": FIRST_DAY, "to": LAST_DAY},
                n,
                warmup=("select * from activities", {"from": FIRST_DAY, "to": FIRST_DAY}),
                repeat=args.repeat,
            )
            report(f"activities ({size / 1e6:.0f} MB)", n, direct, times, rss, dl)
        for n in args.profiles:
            sim.configure(profiles={"count": n})
            direct = []
            for _ in range(args.repeat):
                count, took = direct_profiles(sim_port)
                assert count == n, (count, n)
                direct.append(took)
            times, rss, dl = run_job(
                live,
                instance["token"],
                "select * from users",
                {},
                n,
                warmup=("select * from users limit 1000", {}),
                repeat=args.repeat,
            )
            report("users (profiles)", n, direct, times, rss, dl)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--profiles", type=int, nargs="*", default=[20_000, 200_000])
    parser.add_argument("--no-encrypt", action="store_true", help="BULK_ENCRYPT_RESULTS=0")
    parser.add_argument(
        "--setup",
        nargs="*",
        choices=("redis", "embedded"),
        default=["redis", "embedded"],
        help="redis: Redis broker + PostgreSQL (DATABASE_URL); embedded: the embedded "
        "filesystem broker + SQLite",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side")
    parser.add_argument(
        "--platform-root",
        help="run the platform from this checkout (e.g. another branch's worktree, for a "
        "before/after against the same baseline); default: this one",
    )
    parser.add_argument(
        "--encoding",
        choices=("gzip", "identity"),
        default="gzip",
        help="the export's transfer encoding, the same for the platform (BULK_EXPORT_GZIP) and "
        "the direct client: gzip (the default, as over a real network) or identity",
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-export-files-") as directory,
        SimulatorProcess() as sim,
        StaticExportProcess(Path(directory)) as static,
    ):
        for setup in args.setup:
            run_setup(setup, args, Path(directory), sim, static)
    print("targets: ratio >= 0.6; worker peak RSS < 200 MB and flat across sizes")


if __name__ == "__main__":
    main()
