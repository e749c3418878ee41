"""An instance: one tenant's authenticated connection to an element (contract §3).

The configuration (credentials included) is stored only encrypted, and the token only as a
SHA-256 hash (for lookup) plus an encrypted copy (so its owner can read it back).
"""

from django.db import models

from tenants.models import TenantUser


class Instance(models.Model):
    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="instances")
    element_key = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255)
    tags = models.JSONField(default=list, blank=True)
    encrypted_configuration = models.TextField(editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    encrypted_token = models.TextField(editable=False)
    disabled = models.BooleanField(default=False)
    valid = models.BooleanField(default=True)
    trace_logging_enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user", "id"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.element_key} #{self.pk})"
