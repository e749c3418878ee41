"""gunicorn settings for every way the platform is served (scripts/run.sh, the Dockerfile, the
tests' live platform): gunicorn reads ./gunicorn.conf.py by default; flags override it."""

import os

wsgi_app = "platform_core.wsgi"
# Threads: an element call mostly waits on its vendor, and a waiting thread costs little. Many
# threads per worker, because a gthread worker queues requests behind busy threads: the
# platform lets one vendor host hold at most half of them (VENDOR_HOST_MAX_IN_FLIGHT), so the
# other half always serves the platform's own endpoints and the other vendors.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "64"))  # platform_core/conf.py has the same default
# A worker that misses its heartbeat this long is restarted, and a stopping worker waits this
# long for its requests: both above VENDOR_CALL_DEADLINE (25 s), which ends every element call.
timeout = 30
graceful_timeout = 30
# Each worker touches a heartbeat file on every pass of its loop, so once per request. On a
# disk-backed temp directory that is a journaled metadata write; /dev/shm keeps it in memory.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Metrics (platform_core/metrics.py): each worker process writes its counters to files in this
# directory, and a scrape answered by any worker adds up every process's. Set here, before any
# worker starts, so that workers inherit it; emptied when the master starts (what is left from
# an earlier run would be counted again), and a dead worker's gauges are dropped.
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
    os.path.abspath(
        os.environ.get("PLATFORM_VAR_DIR") or os.path.join(os.path.dirname(__file__), "var")
    ),
    "metrics",
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir


def on_starting(server):
    # The workers size the per-host bound from WEB_THREADS: give them the number gunicorn really
    # uses, also when ``--threads`` overrides this file.
    os.environ["WEB_THREADS"] = str(server.cfg.threads)
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):  # only prometheus_client's files, whatever else is there
            os.remove(os.path.join(metrics_dir, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, metrics_dir)
