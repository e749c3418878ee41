"""Organizations and their API users (contract §1).

These are API identities, distinct from the Django staff accounts that log into the admin UI.
"""

from django.db import models


class Organization(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class TenantUser(models.Model):
    """A user of the API; belongs to one organization and owns instances, jobs and logs."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="users")
    email = models.EmailField()
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "API user"

    # DRF's IsAuthenticated reads this from request.user.
    is_authenticated = True

    def __str__(self) -> str:
        return f"{self.email} (#{self.pk})"
