"""The bulk sweeper inside every Celery worker, so that crash recovery needs no ``celery beat``.

``BulkSweeper`` is a worker bootstep: it starts with the worker (``celery -A platform_core
worker``, with or without ``--beat``) and runs ``services.sweep`` at once, then every
BULK_SWEEP_INTERVAL seconds, in a thread of the worker's main process, until the worker stops.
A job whose worker died is therefore re-queued within the lease plus one interval of any worker
running, and a job whose broker message was lost within BULK_REQUEUE_AFTER.

Why a thread of the main process rather than a task: a task waits for a free pool process, and
those may all be busy with long jobs; a timer in the event loop would stall the consumer while
the database answers. Many workers sweeping at once is safe: each re-queue is claimed with a
conditional UPDATE (``services._requeue``), so a job is queued once per lease however many
workers sweep. The database connection is closed after each sweep, so that no pool process
forked meanwhile inherits it.
"""

from __future__ import annotations

import logging
import random
import threading

from celery import bootsteps
from celery.signals import worker_init
from django.db import connection

from bulk import services
from platform_core.conf import platform_settings

logger = logging.getLogger(__name__)


class SweeperThread(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(name="bulk-sweeper", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                counts = services.sweep()
                if any(counts.values()):
                    logger.info("bulk sweep: %s", counts)
            except Exception:  # the database or broker blinked: the next sweep tries again
                logger.warning("bulk sweep failed", exc_info=True)
            finally:
                connection.close()
            # Jitter, so that workers started together do not sweep in lockstep.
            self.stopped.wait(self.interval * random.uniform(0.8, 1.2))


class BulkSweeper(bootsteps.StartStopStep):
    """Worker bootstep: starts the sweeper thread once the pool is up."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.thread: SweeperThread | None = None

    def start(self, worker):
        self.thread = SweeperThread(max(0.2, platform_settings.BULK_SWEEP_INTERVAL))
        self.thread.start()

    def stop(self, worker):
        if self.thread is not None:
            self.thread.stopped.set()
            self.thread.join(timeout=10)
            self.thread = None

    terminate = stop


@worker_init.connect
def add_bulk_sweeper(sender, **kwargs):
    """Sent by each worker before it builds its bootsteps (never by beat or the web server)."""
    sender.app.steps["worker"].add(BulkSweeper)
