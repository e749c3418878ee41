"""Queueing events work by task name (``events/tasks.py`` registers them). Messages carry only
ids; the rows decide what runs, and the beat tick queues again whatever a lost message left."""

import logging

from platform_core.celery import app

logger = logging.getLogger(__name__)

POLL = "events.poll"
DELIVER = "events.deliver"
PUBLISH_RETRY = {"retry": True, "retry_policy": {"max_retries": 2}}


def enqueue_poll(poller_id: int) -> bool:
    try:
        app.send_task(POLL, (poller_id,), **PUBLISH_RETRY)
        return True
    except Exception:  # broker unreachable: the next tick queues it
        logger.warning("poller %s: could not queue it", poller_id, exc_info=True)
        return False


def enqueue_delivery(notification_id: int, countdown: float | None = None) -> bool:
    try:
        app.send_task(DELIVER, (notification_id,), countdown=countdown, **PUBLISH_RETRY)
        return True
    except Exception:
        logger.warning("notification %s: could not queue it", notification_id, exc_info=True)
        return False
