"""The bulk job's status object (contract §6) as a dict: the API's answers and the job-end
callback's body."""

from datetime import UTC

from bulk.models import BulkJob


def iso(dt) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def job_representation(job: BulkJob) -> dict:
    return {
        "id": job.pk,
        "status": job.status,
        "objectName": job.object_name,
        "recordsCount": job.records_count,
        "recordsFailedCount": job.records_failed_count,
        "createdDate": iso(job.created_at),
        "startedDate": iso(job.started_at),
        "completedDate": iso(job.completed_at),
        "statusMessage": job.status_message or None,
        # Incremental sync: where the next job starts (where <cursorField> >= '<cursor>').
        "cursor": job.cursor or None,
    }
