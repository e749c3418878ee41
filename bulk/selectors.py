"""Reads of bulk jobs, always scoped to the calling instance (another's job is a 404)."""

from bulk.models import BulkJob, BulkJobError, BulkPart
from bulk.storage import StoredPart
from instances.models import Instance
from platform_core.exceptions import NotFound
from platform_core.ids import row_id


def job_get(*, instance: Instance, job_id) -> BulkJob:
    pk = row_id(job_id)
    job = None
    if pk is not None:
        job = BulkJob.objects.filter(instance=instance, pk=pk).first()
    if job is None:
        raise NotFound(f"No bulk job with id {str(job_id)[:40]}.")
    return job


def job_list(
    *, instance: Instance, status: str | None, before_id: int, limit: int
) -> list[BulkJob]:
    """Newest first."""
    qs = BulkJob.objects.filter(instance=instance)
    if status:
        qs = qs.filter(status=status)
    if before_id:
        qs = qs.filter(pk__lt=before_id)
    return list(qs.order_by("-id")[:limit])


def job_errors(*, job: BulkJob, after_id: int, limit: int) -> list[BulkJobError]:
    return list(BulkJobError.objects.filter(job=job, pk__gt=after_id).order_by("id")[:limit])


def job_parts(job: BulkJob) -> list[StoredPart]:
    """The job's committed parts in order, each with the binding its stored file must carry."""
    return [StoredPart.of(part) for part in BulkPart.objects.filter(job=job).order_by("seq")]
