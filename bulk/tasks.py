"""Celery tasks. Messages carry only ids; the rows decide what runs (see runner.py).

``run_job`` is acknowledged late and rejected (re-queued) when its worker process dies. When
the whole worker dies its message stays unacknowledged (with Redis, until the visibility
timeout), and the embedded filesystem broker or a restarted Redis loses messages outright: the
sweeper that runs inside every worker (bulk/worker.py) re-queues such a job once its lease has
gone stale. A message delivered twice is harmless: only one worker can claim the job's row.
"""

import logging

from celery import shared_task

from bulk import callbacks, runner, services

logger = logging.getLogger(__name__)


@shared_task(name="bulk.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(job_id: int) -> str:
    return runner.run_job(job_id)


@shared_task(
    name="bulk.deliver_callback", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def deliver_callback(job_id: int) -> str:
    outcome, delay = callbacks.deliver(job_id)
    if delay is not None:
        services.enqueue_callback(job_id, countdown=delay)
    return outcome


# Workers sweep by themselves; the task stays for operators (``celery -A platform_core call
# bulk.sweep``) and for messages sent by an older beat schedule.
@shared_task(name="bulk.sweep", ignore_result=True)
def sweep() -> dict:
    return services.sweep()


@shared_task(name="bulk.purge_results", ignore_result=True)
def purge_results() -> int:
    return services.purge_results()
