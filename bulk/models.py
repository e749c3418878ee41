"""Bulk download jobs (contract §6). The rows are the source of truth; Celery only carries the
job id to a worker, and a message that is lost or delivered twice changes nothing.

A job's result is a sequence of parts in the result storage. A part counts only once its
``BulkPart`` row is committed, in the same transaction as the checkpoint and the counts after it.
"""

from django.db import models

from instances.models import Instance
from tenants.models import TenantUser


class BulkJob(models.Model):
    class Status(models.TextChoices):
        CREATED = "CREATED"
        RUNNING = "RUNNING"
        COMPLETED = "COMPLETED"
        ERROR = "ERROR"
        CANCELLED = "CANCELLED"

    class Callback(models.TextChoices):
        NONE = "", "none"
        PENDING = "PENDING"
        SENDING = "SENDING"
        DELIVERED = "DELIVERED"
        FAILED = "FAILED"

    TERMINAL = (Status.COMPLETED, Status.ERROR, Status.CANCELLED)

    # A deleted instance leaves its jobs behind (instance NULL), stopped and still readable in
    # the admin; their results go at the end of the retention period like any other's.
    instance = models.ForeignKey(
        Instance, on_delete=models.SET_NULL, null=True, blank=True, related_name="bulk_jobs"
    )
    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="bulk_jobs")
    element_key = models.CharField(max_length=64)
    object_name = models.CharField(max_length=100)
    query_text = models.TextField()
    date_from = models.DateTimeField(null=True, blank=True)
    date_to = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    status_message = models.TextField(blank=True, default="")
    records_count = models.BigIntegerField(default=0)
    records_failed_count = models.BigIntegerField(default=0)
    bytes_written = models.BigIntegerField(default=0)
    parts_count = models.IntegerField(default=0)
    checkpoint = models.JSONField(null=True, blank=True)
    # Top-level keys of the records, in order of first appearance (the CSV header).
    fields = models.JSONField(default=list, blank=True)
    progress_done = models.IntegerField(null=True, blank=True)
    progress_total = models.IntegerField(null=True, blank=True)
    # Incremental sync: the highest cursor value written, ISO-8601 UTC (committed with the
    # checkpoint of the page that raised it, so it survives a crash and resume).
    cursor = models.CharField(max_length=40, blank=True, default="")

    # Who runs it: a lease that the worker renews; a stale heartbeat means the worker is gone.
    worker_id = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    results_deleted_at = models.DateTimeField(null=True, blank=True)

    callback_url = models.TextField(blank=True, default="")
    callback_status = models.CharField(
        max_length=10, choices=Callback.choices, blank=True, default=Callback.NONE
    )
    callback_attempts = models.IntegerField(default=0)
    callback_next_at = models.DateTimeField(null=True, blank=True)
    callback_delivered_at = models.DateTimeField(null=True, blank=True)
    callback_last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        # Reading a job's row is not reading a tenant's data: downloading its results (every
        # record, decrypted) is a permission of its own.
        permissions = [("download_bulkjob_results", "Can download the results of bulk jobs")]
        indexes = [
            models.Index(fields=["instance", "id"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["callback_status", "callback_next_at"]),
        ]

    def __str__(self) -> str:
        return f"Bulk job #{self.pk} ({self.object_name}, {self.status})"


class BulkPart(models.Model):
    """One committed piece of a job's result: a page's records, one JSON object a line."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="parts")
    seq = models.IntegerField()
    name = models.CharField(max_length=300)
    records = models.IntegerField()
    size = models.BigIntegerField()  # bytes of NDJSON before encryption
    encrypted = models.BooleanField(default=False)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="bulk_part_job_seq")]

    def __str__(self) -> str:
        return self.name


class BulkJobError(models.Model):
    """A record the source could not read (counted in ``recordsFailedCount``)."""

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="errors")
    position = models.CharField(max_length=100)
    message = models.CharField(max_length=500)
    raw = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "id"]
        indexes = [models.Index(fields=["job", "id"])]

    def __str__(self) -> str:
        return f"{self.position}: {self.message}"
