"""Writes for bulk jobs: submit, cancel, retry, the sweeper and the retention purge.

Celery messages only carry a job id. Every enqueue may fail (broker down) or be lost (Redis
restarted without persistence): the job row stays and ``sweep`` hands it out again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date

from bulk import storage
from bulk.callbacks import CALLBACK_NOT_SENT, CallbackRefused, check_callback_url
from bulk.models import BulkJob, BulkPart
from bulk.queries import query_of

# Re-exported: the services queue through these names (tests replace them here).
from bulk.queue import enqueue_callback, enqueue_job  # noqa: F401
from bulk.scheduling import WAITING_FOR_TURN
from bulk.transformed import bulk_object_names, bulk_source, vendor_object
from elements.framework.bulk import BulkQueryError
from elements.framework.ceql import CeqlError, parse_select
from elements.framework.registry import element_by_key
from elements.framework.requirements import check_bulk_configuration
from instances.crypto import CredentialsUnreadable
from instances.models import Instance
from instances.services import configuration_of
from platform_core.conf import platform_settings
from platform_core.dates import instant_param
from platform_core.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

CALLBACK_HEADER = "Elements-Async-Callback-Url"
Status = BulkJob.Status
Callback = BulkJob.Callback


# --- submit ------------------------------------------------------------------------------------


def _is_date(raw: str) -> bool:
    try:
        return parse_date(raw.strip()) is not None
    except ValueError:
        return False


def _check_configuration(instance: Instance, element, object_name: str) -> None:
    """400 when the instance lacks configuration the object's bulk jobs need, as an element call
    is refused (elements/framework/requirements.py), rather than an error once the job runs."""
    obj = vendor_object(instance, element, object_name)
    if obj is None or not obj.bulk_configuration_needs:
        return
    try:
        configuration = configuration_of(instance)
    except CredentialsUnreadable:
        return  # the job ends in an error that says so (bulk/runner.py)
    check_bulk_configuration(element, obj, instance_id=instance.pk, configuration=configuration)


def job_submit(
    *,
    instance: Instance,
    q,
    date_from=None,
    date_to=None,
    callback_url: str | None = None,
) -> BulkJob:
    """Check everything a caller can get wrong (400s), store the job, queue it."""
    if not isinstance(q, str) or not q.strip():
        raise ValidationFailed(
            "q is required: a CEQL query such as 'select * from activities'.",
            errors=[{"field": "q", "message": "is required"}],
        )
    try:
        select = parse_select(q)
    except CeqlError as exc:
        raise ValidationFailed(
            f"q is not a valid query: {exc}",
            errors=[{"field": "q", "message": str(exc)}],
        ) from None
    element = element_by_key(instance.element_key)
    # The element's own object, or a transformed object of the instance's (bulk/transformed.py).
    source = bulk_source(instance, element, select.object_name) if element else None
    if source is None:
        names = ", ".join(sorted(bulk_object_names(instance, element) if element else [])) or (
            "nothing"
        )
        raise ValidationFailed(
            f"Unknown object {select.object_name[:100]!r}: this element can bulk-download {names}.",
            errors=[{"field": "q", "message": f"unknown object {select.object_name[:100]!r}"}],
        )
    start = instant_param(date_from, "from")
    end = instant_param(date_to, "to")
    now = timezone.now()
    # A bare date as `to` is that whole UTC day: from=2024-03-01T22:48:00Z&to=2024-03-01 is fine.
    whole_day = isinstance(date_to, str) and end is not None and _is_date(date_to)
    if start and start > (
        (end + timedelta(days=1, microseconds=-1)) if whole_day else (end or now)
    ):
        raise ValidationFailed(
            "from is later than to.",
            errors=[{"field": "from", "message": "is later than to"}],
        )
    job = BulkJob(
        instance=instance,
        user_id=instance.user_id,
        element_key=instance.element_key,
        object_name=select.object_name,
        query_text=q,
        date_from=start,
        # The range is fixed now: a job that resumes tomorrow still reads the same days.
        date_to=end or now,
        callback_url=callback_url or "",
        queued_at=now,
    )
    validate = getattr(source, "validate", None)
    try:
        query = query_of(job, select)  # a cursor condition that cannot run is a 400 here
        if validate is not None:
            validate(query)
    except (BulkQueryError, CeqlError) as exc:
        field = getattr(exc, "field", "q")
        raise ValidationFailed(
            f"The query cannot run: {exc}", errors=[{"field": field, "message": str(exc)}]
        ) from None
    _check_configuration(instance, element, select.object_name)
    if callback_url:
        try:
            check_callback_url(callback_url)
        except CallbackRefused as exc:
            raise ValidationFailed(
                f"{CALLBACK_HEADER}: the URL {exc}.",
                errors=[{"field": CALLBACK_HEADER, "message": str(exc)}],
            ) from None
    job.save(force_insert=True)
    transaction.on_commit(lambda: enqueue_job(job.pk))
    return job


# --- cancel and retry --------------------------------------------------------------------------


def job_cancel(job: BulkJob, *, message: str = "Cancelled by the user.") -> BulkJob:
    """CREATED or RUNNING -> CANCELLED. A running worker notices at its next page and stops."""
    if job.status == Status.CANCELLED:
        return job
    updates = {
        "status": Status.CANCELLED,
        "status_message": message,
        "completed_at": timezone.now(),
        "worker_id": "",
    }
    if job.callback_url:
        updates["callback_status"] = Callback.PENDING
        updates["callback_next_at"] = timezone.now()
    cancelled = BulkJob.objects.filter(
        pk=job.pk, status__in=(Status.CREATED, Status.RUNNING)
    ).update(**updates)
    job.refresh_from_db()
    if not cancelled:
        if job.status == Status.CANCELLED:
            return job
        raise Conflict(f"Job {job.pk} has already ended ({job.status}); it cannot be cancelled.")
    if job.callback_url:
        transaction.on_commit(lambda: enqueue_callback(job.pk))
    return job


def job_retry(job: BulkJob) -> bool:
    """ERROR or CANCELLED -> CREATED, resuming from the last committed checkpoint (admin).
    Not for a job whose instance is gone or disabled: it would only stop again."""
    retried = BulkJob.objects.filter(
        pk=job.pk,
        status__in=(Status.ERROR, Status.CANCELLED),
        results_deleted_at__isnull=True,
        instance__disabled=False,
    ).update(
        status=Status.CREATED,
        status_message="",
        completed_at=None,
        attempts=0,
        queued_at=timezone.now(),
        callback_status=Callback.NONE,
        callback_attempts=0,
        callback_last_error="",
    )
    if retried:
        transaction.on_commit(lambda: enqueue_job(job.pk))
    return bool(retried)


# --- jobs stop with their instance -------------------------------------------------------------

# Why a job ended when its instance went away (its ``statusMessage``). The status is CANCELLED:
# the job was withdrawn by a deliberate act of its owner or an operator, nothing failed.
INSTANCE_DISABLED = "Stopped because the element instance was disabled."
INSTANCE_DELETED = "Stopped because the element instance was deleted."
# Callbacks are signed with a key from the instance's configuration, which is deleted with it.


def instance_stop_reason(*, instance_id: int | None, disabled: bool | None) -> str | None:
    """Why a job of this instance may not run (None: it may)."""
    if instance_id is None or disabled is None:
        return INSTANCE_DELETED
    return INSTANCE_DISABLED if disabled else None


def jobs_stop_for_deleted_instance(*, instance_id: int) -> int:
    """As an instance is deleted (bulk/signals.py, in the deleting transaction): its CREATED and
    RUNNING jobs end CANCELLED at once, and callbacks not yet sent are given up. A worker
    running one of them notices before its next page or vendor call and stops."""
    now = timezone.now()
    jobs = BulkJob.objects.filter(instance_id=instance_id)
    stopped = jobs.filter(status__in=(Status.CREATED, Status.RUNNING)).update(
        status=Status.CANCELLED,
        status_message=INSTANCE_DELETED,
        completed_at=now,
        worker_id="",
    )
    jobs.exclude(callback_url="").filter(
        Q(status__in=BulkJob.TERMINAL)
        & Q(callback_status__in=(Callback.NONE, Callback.PENDING, Callback.SENDING))
    ).update(callback_status=Callback.FAILED, callback_last_error=CALLBACK_NOT_SENT)
    if stopped:
        logger.info("instance %s deleted: %s bulk jobs stopped", instance_id, stopped)
    return stopped


# --- periodic tasks ----------------------------------------------------------------------------


def _requeue(condition: Q, now: datetime, reason: str) -> int:
    """Queue again the jobs matching ``condition``, each claimed by moving ``queued_at`` to
    ``now`` in a conditional update, so concurrent sweepers queue a job once."""
    requeued = 0
    for job_id in BulkJob.objects.filter(condition).values_list("id", flat=True)[:1000]:
        if BulkJob.objects.filter(condition, pk=job_id).update(queued_at=now):
            logger.warning("bulk job %s: %s; re-queued", job_id, reason)
            enqueue_job(job_id)
            requeued += 1
    return requeued


def sweep(now: datetime | None = None) -> dict:
    """Hand out again what nobody is working on:

    - RUNNING jobs whose heartbeat is older than the lease (the worker died);
    - CREATED jobs, and jobs that gave way (bulk/scheduling.py), queued longer ago than
      BULK_REQUEUE_AFTER (the message was lost);
    - callbacks due for a while that nobody sent, or stuck mid-send.
    Each re-queue moves ``queued_at``/``callback_next_at`` forward, so a job is re-queued at most
    once per lease (or BULK_REQUEUE_AFTER) however often the sweeper runs.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=platform_settings.BULK_LEASE_SECONDS)
    counts = {"stale": 0, "unclaimed": 0, "callbacks": 0}

    stale = Q(status=Status.RUNNING, heartbeat_at__lt=now - lease) & (
        Q(queued_at__isnull=True) | Q(queued_at__lt=now - lease)
    )
    counts["stale"] = _requeue(stale, now, "its worker stopped renewing the lease")

    waited = timedelta(seconds=platform_settings.BULK_REQUEUE_AFTER)
    unclaimed = (Q(status=Status.CREATED) | WAITING_FOR_TURN) & (
        Q(queued_at__isnull=True) | Q(queued_at__lt=now - waited)
    )
    counts["unclaimed"] = _requeue(unclaimed, now, "not claimed since it was queued")

    grace = timedelta(seconds=max(10.0, platform_settings.BULK_SWEEP_INTERVAL))
    due = Q(callback_status=Callback.PENDING, callback_next_at__lt=now - grace)
    sending_for = grace + timedelta(seconds=2 * platform_settings.BULK_CALLBACK_TIMEOUT)
    stuck = Q(callback_status=Callback.SENDING, callback_next_at__lt=now - sending_for)
    for job_id in BulkJob.objects.filter(due | stuck).values_list("id", flat=True)[:1000]:
        if BulkJob.objects.filter(due | stuck, pk=job_id).update(
            callback_status=Callback.PENDING, callback_next_at=now
        ):
            enqueue_callback(job_id)
            counts["callbacks"] += 1
    return counts


def results_reencrypt() -> tuple[int, int]:
    """After a key rotation (``rotate_credentials_key``): every stored result part under the
    first of CREDENTIALS_KEYS, so that the old key can be removed at once.

    Each part is written anew, its row repointed, then the old file deleted, so the result is
    complete at every moment; a download streaming that very part just then fails and can be
    retried. Returns (parts re-encrypted, parts no configured key reads)."""
    done = unreadable = 0
    parts = BulkPart.objects.filter(encrypted=True, job__results_deleted_at__isnull=True)
    for part in parts.order_by("pk").iterator():
        try:
            new_name = storage.reencrypt_part(storage.StoredPart.of(part))
        except FileNotFoundError:
            continue  # purged or cancelled meanwhile
        except CredentialsUnreadable:
            unreadable += 1
            continue
        if new_name is None:
            continue
        moved = BulkPart.objects.filter(pk=part.pk, name=part.name).update(name=new_name)
        storage.delete_files([part.name] if moved else [new_name])
        done += moved
    if done:
        logger.info("bulk: re-encrypted %s result parts under the first key", done)
    return done, unreadable


def purge_results(now: datetime | None = None) -> int:
    """Delete the result files of jobs that ended more than BULK_RESULT_RETENTION_DAYS ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=platform_settings.BULK_RESULT_RETENTION_DAYS)
    expired = BulkJob.objects.filter(
        status__in=BulkJob.TERMINAL, completed_at__lt=cutoff, results_deleted_at__isnull=True
    )
    purged = 0
    for job_id in expired.values_list("id", flat=True)[:10_000]:
        storage.delete_job_files(job_id)
        with transaction.atomic():
            BulkPart.objects.filter(job_id=job_id).delete()
            BulkJob.objects.filter(pk=job_id).update(results_deleted_at=now)
        purged += 1
    if purged:
        logger.info("bulk: deleted the results of %s jobs past retention", purged)
    return purged


# --- turns (bulk/scheduling.py) ----------------------------------------------------------------


def job_give_way(*, job_id: int, worker_id: str) -> bool:
    """The running job leaves its worker to a waiting job and queues itself again behind it.
    Only while it is still this worker's and RUNNING (False: it is not, nothing changed)."""
    gave_way = BulkJob.objects.filter(pk=job_id, status=Status.RUNNING, worker_id=worker_id).update(
        worker_id="", heartbeat_at=None, queued_at=timezone.now()
    )
    if gave_way:
        enqueue_job(job_id)  # lost: the sweeper queues it after BULK_REQUEUE_AFTER
    return bool(gave_way)
