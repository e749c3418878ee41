"""A read-only mirror of the element definitions, so the admin UI can list them.

The definitions in ``elements/<key>/`` are the source; this table is rewritten from them after
every ``migrate`` and is never edited by hand.
"""

from django.db import models


class ElementRecord(models.Model):
    element_id = models.PositiveIntegerField(unique=True)
    key = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    hub = models.CharField(max_length=64)
    auth_type = models.CharField(max_length=32)
    operation_count = models.PositiveIntegerField()
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        verbose_name = "element"

    def __str__(self) -> str:
        return self.name
