"""One row per element call (contract §7). No foreign keys: the log outlives deleted instances
and is written in batches by another thread."""

from django.db import models


class UsageRecord(models.Model):
    request_id = models.CharField(max_length=32, unique=True)
    user_id = models.BigIntegerField()
    instance_id = models.BigIntegerField(null=True)
    element_key = models.CharField(max_length=64)
    operation = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    vendor_status = models.PositiveSmallIntegerField(null=True)
    duration_ms = models.FloatField()
    created_at = models.DateTimeField(db_index=True)
    # Only with the instance's traceLoggingEnabled, and with secrets redacted.
    request_body = models.JSONField(null=True)
    response_body = models.JSONField(null=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user_id", "id"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"
