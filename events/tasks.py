"""Celery tasks for events; messages carry only ids, the rows decide (services.py)."""

from celery import shared_task

from events import queue, services


@shared_task(name="events.tick", ignore_result=True)
def tick() -> dict:
    return services.tick()


@shared_task(name="events.purge", ignore_result=True)
def purge() -> int:
    return services.events_purge()


@shared_task(name="events.poll", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def poll(poller_id: int) -> str:
    return services.poll(poller_id)


@shared_task(name="events.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(notification_id: int) -> str:
    outcome, delay = services.deliver(notification_id)
    if delay is not None:
        queue.enqueue_delivery(notification_id, countdown=delay)
    return outcome
