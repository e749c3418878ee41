"""gunicorn settings for every way the platform is served (scripts/run.sh, the Dockerfile, the
tests' live platform): gunicorn reads ./gunicorn.conf.py by default; flags override it."""

import contextlib
import errno
import os
import socket
import time

from gunicorn.workers import gthread

wsgi_app = "platform_core.wsgi"
# Threads: an element call mostly waits on its vendor, and a waiting thread costs little. Many
# threads per worker, because a gthread worker queues requests behind busy threads: the
# platform lets one vendor host hold at most half of them (VENDOR_HOST_MAX_IN_FLIGHT), so the
# other half always serves the platform's own endpoints and the other vendors.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "64"))  # platform_core/conf.py has the same default
# A worker that misses its heartbeat this long is restarted, and a stopping worker waits this
# long for its requests: both above VENDOR_CALL_DEADLINE (25 s), which ends every element call.
timeout = 30
graceful_timeout = 30
# Slow clients. gunicorn reads a request in the thread that serves it, on a blocking socket with
# no timeout: a client that sent part of its headers, or announced a body it never sends, kept its
# thread for ever, and a few dozen such connections took every thread. So a request's headers
# must arrive within this many seconds of its connection being handed to the threads (accepted,
# or readable again), and after them no read of the body nor write of the answer waits longer
# than this for the client. A slow upload or download that keeps moving goes on, and an element
# call waiting on its vendor (VENDOR_CALL_DEADLINE) touches no client socket meanwhile. The proxy
# in front, buffering requests, is the first line of defence (README, "The proxy in front").
request_read_timeout = float(os.environ.get("WEB_REQUEST_READ_TIMEOUT", "30"))
if request_read_timeout <= 0:
    raise ValueError("WEB_REQUEST_READ_TIMEOUT must be a number of seconds above 0.")


class ClientSocket(socket.socket):
    """A client's connection, whose blocking waits give up after ``request_read_timeout``."""

    __slots__ = ("headers_due",)  # time.monotonic() deadline while headers are read, else None

    def setblocking(self, flag):
        # gunicorn makes the socket blocking before it reads a request or writes an answer.
        self.settimeout(request_read_timeout if flag else 0.0)

    def recv(self, size, flags=0):
        timeout = self.gettimeout()
        if self.headers_due is not None and timeout:  # the headers' deadline shortens any wait
            left = max(self.headers_due - time.monotonic(), 0.001)  # a moment, for what is here
            self.settimeout(min(timeout, left))
        try:
            return super().recv(size, flags)
        except TimeoutError:
            # Read as the end of the connection, as when a client leaves: gunicorn drops a
            # request cut short in its headers, and the platform answers 400 to a body cut short
            # (platform_core/wsgi.py). Shut for reading, so that no later read waits again (nor
            # gunicorn's closing of the connection, in its main loop).
            with contextlib.suppress(OSError):
                self.shutdown(socket.SHUT_RD)
            return b""

    def sendall(self, data, flags=0):
        # socket.sendall's timeout bounds the whole answer: bound each wait for the client.
        view = memoryview(data)
        while view:
            try:
                view = view[self.send(view, flags) :]
            except TimeoutError:
                with contextlib.suppress(OSError):
                    self.shutdown(socket.SHUT_RDWR)
                # What gunicorn takes for a client gone: dropped without a stack trace.
                raise BrokenPipeError(errno.EPIPE, "The client stopped reading.") from None


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, its client connections ``ClientSocket``s."""

    def enqueue_req(self, conn):
        if type(conn.sock) is socket.socket:  # just accepted
            conn.sock = ClientSocket(fileno=conn.sock.detach())
        if isinstance(conn.sock, ClientSocket):  # not wrapped by gunicorn's own TLS
            conn.sock.headers_due = time.monotonic() + request_read_timeout
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        if isinstance(conn.sock, ClientSocket):  # headers read: now each wait is bounded
            conn.sock.headers_due = None
            conn.sock.settimeout(request_read_timeout)
        return super().handle_request(req, conn)


worker_class = ThreadWorker

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
