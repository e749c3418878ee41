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
    0: no turns).

    Once the slice is used up, the job gives way at the next page that completes a unit of the
    source's progress (``Page.progress``: for Mixpanel's export, a day), because the next turn
    then resumes at the start of a unit: resuming inside one, the vendor sends the unit again
    from its start up to the checkpoint (an export day's lines are skipped, not re-requested
    from the middle). A page without progress is such a point. After a second slice without
    one, the job gives way at the next page anyway."""

    def __init__(self, job_id: int, seconds: float | None = None):
        self.job_id = job_id
        seconds = platform_settings.BULK_JOB_SLICE_SECONDS if seconds is None else seconds
        self.seconds = float(seconds)
        started = monotonic()
        self.ends = started + self.seconds if self.seconds > 0 else None
        self.last_unit = started + 2 * self.seconds  # give way without a unit done after this
        self.progress: int | None = None

    def over(self, progress: tuple[int, int] | None) -> bool:
        """After each committed (or submitted) page, with its progress: whether the job should
        give way now. Asks the database at most once per ``RECHECK_SECONDS`` after the slice
        ended, and only at a page where giving way is cheap (or after the second slice)."""
        unit_done = progress is None or (self.progress is not None and progress[0] != self.progress)
        self.progress = progress[0] if progress else None
        if self.ends is None:
            return False
        now = monotonic()
        if now < self.ends or not (unit_done or now >= self.last_unit):
            return False
        if jobs_waiting(besides=self.job_id):
            return True
        self.ends = now + min(RECHECK_SECONDS, self.seconds)
        return False
