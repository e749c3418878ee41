"""Bulk download throughput and worker memory (issue 4 targets: ratio at least 0.6, worker peak
RSS under 200 MB, not growing with the export).

For each size, in the same run:
- direct: the same export read straight from the simulator with a plain streaming HTTP client
  (http.client, one request for the whole date range, written to a file as it arrives), with
  the same transfer encoding as the platform's requests: gzip by default (what a bulk job asks
  Mixpanel for, BULK_EXPORT_GZIP), or ``--encoding identity`` on both sides;
- platform: a bulk job (POST /bulk/query) run by a fresh ``celery worker`` (concurrency 1), timed
  from the submit to COMPLETED, i.e. to a complete, committed NDJSON result;
then records/s of both (the best of ``--repeat`` runs each: this machine's timings wander),
their ratio, and the worker's peak RSS (VmHWM of its pool child).
The same for profiles: engage pages straight from the simulator against a ``users`` job.
Both sides of the export are warmed up first (one day), and each fresh worker runs a small job
before the measured one, so that no figure includes a cold process or connection.

    .venv/bin/python -m bench.bulk_throughput [--events 100000 1000000] [--profiles 20000 200000]
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url, redis_broker_env  # noqa: E402
from simulators.mixpanel.testing import SA_CONFIGURATION as SA  # noqa: E402
from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402
from tests.live_platform import LivePlatform  # noqa: E402

DAYS = 10
FIRST_DAY = "2024-01-01"
LAST_DAY = "2024-01-10"


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
    """A fresh worker runs a small warm-up job, then the measured one ``repeat`` times: (best
    seconds from submit to COMPLETED, the worker's peak RSS in MB over all of them, seconds to
    download the last NDJSON result)."""
    worker = live.start_worker(concurrency=1, beat=False)
    try:
        auth = {"Authorization": live.element_auth(token)}
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=600)
        status, _ = submit_and_wait(conn, auth, *warmup)
        assert status["status"] == "COMPLETED", status
        seconds = float("inf")
        for _ in range(repeat):
            status, took = submit_and_wait(conn, auth, q, params)
            assert status["status"] == "COMPLETED", status
            assert status["recordsCount"] == expected, (status, expected)
            seconds = min(seconds, took)
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
        return seconds, peak_kb / 1024, download
    finally:
        worker.stop()


def report(label: str, n: int, direct_s: float, job_s: float, rss_mb: float, download_s: float):
    direct_rate, job_rate = n / direct_s, n / job_s
    print(
        f"{label:<22} {n:>9,}  direct {direct_rate:>9,.0f}/s ({direct_s:6.2f} s)  "
        f"job {job_rate:>9,.0f}/s ({job_s:6.2f} s)  ratio {job_rate / direct_rate:4.2f}  "
        f"worker peak RSS {rss_mb:5.1f} MB  (NDJSON download {n / download_s:,.0f}/s)"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--profiles", type=int, nargs="*", default=[20_000, 200_000])
    parser.add_argument("--no-encrypt", action="store_true", help="BULK_ENCRYPT_RESULTS=0")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each side; the best one counts"
    )
    parser.add_argument(
        "--encoding",
        choices=("gzip", "identity"),
        default="gzip",
        help="the export's transfer encoding, the same for the platform (BULK_EXPORT_GZIP) and "
        "the direct client: gzip (the default, as over a real network) or identity",
    )
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", database_url())
    gzip = args.encoding == "gzip"

    env = {
        "BULK_ENCRYPT_RESULTS": "0" if args.no_encrypt else "1",
        "BULK_EXPORT_GZIP": "1" if gzip else "0",
    }
    redis_env = redis_broker_env("bench-bulk")
    env.update(redis_env or {})
    broker = redis_env["CELERY_BROKER_URL"] if redis_env else "embedded filesystem broker"

    with (
        SimulatorProcess() as sim,
        LivePlatform(mixpanel_base_url=sim.base_url, extra_env=env) as live,
    ):
        sim_port = int(sim.base_url.rsplit(":", 1)[1])
        instance = live.create_instance(SA)
        print(
            f"bulk_throughput: broker {broker.split('@')[-1]}, database "
            f"{live.database_url.split('://')[0]}, results encrypted: {not args.no_encrypt}, "
            f"export encoding (both sides): {args.encoding}"
        )
        for n in args.events:
            sim.configure(events_per_day=n // DAYS)
            direct_export(sim_port, gzip, last_day=FIRST_DAY)  # warm-up, as for the job
            direct_s = float("inf")
            for _ in range(args.repeat):
                lines, took = direct_export(sim_port, gzip)
                assert lines == n, (lines, n)
                direct_s = min(direct_s, took)
            job_s, rss, dl = run_job(
                live,
                instance["token"],
                "select * from activities",
                {"from": FIRST_DAY, "to": LAST_DAY},
                n,
                warmup=("select * from activities", {"from": FIRST_DAY, "to": FIRST_DAY}),
                repeat=args.repeat,
            )
            report("activities (events)", n, direct_s, job_s, rss, dl)
        for n in args.profiles:
            sim.configure(profiles={"count": n})
            direct_s = float("inf")
            for _ in range(args.repeat):
                count, took = direct_profiles(sim_port)
                assert count == n, (count, n)
                direct_s = min(direct_s, took)
            job_s, rss, dl = run_job(
                live,
                instance["token"],
                "select * from users",
                {},
                n,
                warmup=("select * from users limit 1000", {}),
                repeat=args.repeat,
            )
            report("users (profiles)", n, direct_s, job_s, rss, dl)
        print("targets: ratio >= 0.6; worker peak RSS < 200 MB and flat across sizes")


if __name__ == "__main__":
    main()
