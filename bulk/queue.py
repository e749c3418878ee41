"""Queueing bulk work: tasks are sent by name (``bulk/tasks.py`` registers them), so the code
that queues work never imports the tasks that run it.

Messages carry only ids. A message that cannot be sent (the broker is down) is not an error for
the caller: the job's row is the truth, and the sweeper queues it once the broker is back."""

import logging

from platform_core.celery import app

logger = logging.getLogger(__name__)

RUN_JOB = "bulk.run_job"
DELIVER_CALLBACK = "bulk.deliver_callback"
# Kombu's own retries of the publish (a broker connection being re-established).
PUBLISH_RETRY = {"retry": True, "retry_policy": {"max_retries": 2}}


def enqueue_job(job_id: int) -> bool:
    try:
        app.send_task(RUN_JOB, (job_id,), **PUBLISH_RETRY)
        return True
    except Exception:  # broker unreachable: the sweeper queues it once the broker is back
        logger.warning("bulk job %s: could not queue it; the sweeper will", job_id, exc_info=True)
        return False


def enqueue_callback(job_id: int, countdown: float | None = None) -> bool:
    try:
        app.send_task(DELIVER_CALLBACK, (job_id,), countdown=countdown, **PUBLISH_RETRY)
        return True
    except Exception:
        logger.warning("bulk job %s: could not queue its callback", job_id, exc_info=True)
        return False
