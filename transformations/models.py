"""Object definitions and transformations (contract §9; Cloud Elements' "common resources").

A definition names a tenant's own object and its fields; a transformation maps it onto an
element's object. Both exist at organization level (a transformation per element) and at
instance level; ``instance`` is null at organization level.
"""

from django.db import models
from django.db.models import Q

from instances.models import Instance
from tenants.models import Organization


class Level(models.TextChoices):
    ORGANIZATION = "organization"
    INSTANCE = "instance"


class ObjectDefinition(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="object_definitions"
    )
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="definitions"
    )
    name = models.CharField(max_length=100)
    fields = models.JSONField(default=list)  # [{"path": "id", "type": "string"}]
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=Q(instance__isnull=True),
                name="one_org_definition_per_name",
            ),
            models.UniqueConstraint(
                fields=["instance", "name"],
                condition=Q(instance__isnull=False),
                name="one_instance_definition_per_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.level})"

    @property
    def level(self) -> str:
        return Level.INSTANCE if self.instance_id else Level.ORGANIZATION


class Transformation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="transformations"
    )
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="transformations"
    )
    element_key = models.CharField(max_length=64)
    object_name = models.CharField(max_length=100, db_index=True)
    vendor_name = models.CharField(max_length=100)
    # [{"path", "vendorPath", "type"?, "configuration"?: [...]}]
    fields = models.JSONField(default=list)
    # [{"type": "passThrough", "properties": {...}} | {"type": "inherit"}]
    configuration = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["object_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "element_key", "object_name"],
                condition=Q(instance__isnull=True),
                name="one_org_transformation_per_element_and_name",
            ),
            models.UniqueConstraint(
                fields=["instance", "object_name"],
                condition=Q(instance__isnull=False),
                name="one_instance_transformation_per_name",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object_name} -> {self.element_key}/{self.vendor_name} ({self.level})"

    @property
    def level(self) -> str:
        return Level.INSTANCE if self.instance_id else Level.ORGANIZATION

    def has_configuration(self, kind: str) -> bool:
        return any(c.get("type") == kind for c in self.configuration)
