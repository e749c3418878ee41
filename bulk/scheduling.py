"""Fair turns between bulk jobs: a job that has worked for a time slice while other jobs wait
gives its worker up and queues itself again behind them.

A worker runs one job at a time. Without turns, a tenant's small job waits behind every large
job queued before it, however long they take. With turns, every waiting job gets a worker
within about (jobs ahead of it / workers) slices.

A job gives way only at a page boundary, after its page is committed, and only when some other
job is waiting: a lone job never pays for a turn. Giving way (``services.job_give_way``) keeps
the job RUNNING (its status and counts do not move backwards for its owner) but drops its lease:
no worker, no heartbeat, ``queued_at`` now, and a new message at the tail of the queue. The next
worker to get that message claims it as any other (``runner.claim``), deletes nothing that was
committed and resumes from the committed checkpoint, so every record is still in the result
exactly once. A claim after giving way is not counted as an attempt (attempts count workers that
died), and the sweeper queues a job that waits for its turn again if its message was lost, as it
does for a CREATED one.
"""

from __future__ import annotations

from time import monotonic

from django.db.models import Q

from bulk.models import BulkJob
from platform_core.conf import platform_settings

Status = BulkJob.Status

# A job that gave way: RUNNING, but nobody holds its lease.
WAITING_FOR_TURN = Q(status=Status.RUNNING, heartbeat_at__isnull=True, worker_id="")
# Any job that waits for a worker.
WAITING = Q(status=Status.CREATED) | WAITING_FOR_TURN

# Seconds between two looks for waiting jobs once the slice is over and nobody waited.
RECHECK_SECONDS = 1.0


def jobs_waiting(*, besides: int) -> bool:
    """Whether a job other than ``besides`` waits for a worker (one indexed query)."""
    return BulkJob.objects.filter(WAITING).exclude(pk=besides).exists()


class TimeSlice:
    """The time a job may keep its worker while others wait (``BULK_JOB_SLICE_SECONDS``;
    0 turns turns off)."""

    def __init__(self, job_id: int, seconds: float | None = None):
        self.job_id = job_id
        seconds = platform_settings.BULK_JOB_SLICE_SECONDS if seconds is None else seconds
        self.seconds = float(seconds)
        self.ends = monotonic() + self.seconds if self.seconds > 0 else None

    def over(self) -> bool:
        """True once the slice is used up and another job waits. Asks the database at most
        once per ``RECHECK_SECONDS`` after the slice ended."""
        if self.ends is None or monotonic() < self.ends:
            return False
        if jobs_waiting(besides=self.job_id):
            return True
        self.ends = monotonic() + min(RECHECK_SECONDS, self.seconds)
        return False
