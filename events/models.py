"""Events by polling (contract §10): pollers, the events they found, the notifications that
carry them and each delivery attempt; and the per-project query budget polls share."""

import uuid

from django.db import models

from instances.models import Instance


class Poller(models.Model):
    """One (instance, object) being polled. ``state`` is what the element's poller handed back
    last time (its cursors): None until the first poll, the baseline. A worker polls only
    while it holds the lease (``lease_owner`` until ``lease_until``)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="event_pollers")
    object_name = models.CharField(max_length=64)
    interval_seconds = models.FloatField()
    state = models.JSONField(null=True, blank=True, editable=False)
    next_run_at = models.DateTimeField(db_index=True)
    # When the tick last queued a poll of it: not queued again while that message may still be
    # waiting for a worker (a lost one is queued again after the lease).
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    polls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "object_name"], name="one_poller_per_object"
            )
        ]

    def __str__(self) -> str:
        return f"{self.object_name} of instance #{self.instance_id}"


class Notification(models.Model):
    """One POST to the tenant's callback: at most 10 events of one object."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        SENDING = "SENDING"
        DELIVERED = "DELIVERED"
        FAILED = "FAILED"

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="notifications")
    object_type = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_at"])]

    def __str__(self) -> str:
        return f"notification {self.message_id}"


class Event(models.Model):
    class Status(models.TextChoices):
        NEW = "NEW"
        NOTIFIED = "NOTIFIED"
        FAILED = "FAILED"

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="events")
    object_type = models.CharField(max_length=64)
    event_type = models.CharField(max_length=16)
    object_id = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    event_date = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    # What the vendor showed of the record (a tenant's data): encrypted like credentials.
    encrypted_record = models.TextField(blank=True, editable=False)
    notification = models.ForeignKey(
        Notification, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            # The same change seen by two overlapping polls is one event.
            models.UniqueConstraint(
                fields=["instance", "object_type", "object_id", "version"],
                name="one_event_per_version",
            )
        ]
        indexes = [models.Index(fields=["instance", "id"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.object_type} {self.object_id}"


class Delivery(models.Model):
    """One attempt to POST a notification."""

    class Status(models.TextChoices):
        DELIVERED = "DELIVERED"
        RETRY = "RETRY"
        FAILED = "FAILED"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    attempt = models.PositiveIntegerField()
    date = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    response_status = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.notification}"


class QueryBudget(models.Model):
    """A vendor project's query budget: polls of every instance of the project draw on it. The
    row is locked while a query is counted; ``QuerySpend`` rows are the queries in the window."""

    key = models.CharField(max_length=200, unique=True)

    def __str__(self) -> str:
        return self.key


class QuerySpend(models.Model):
    budget = models.ForeignKey(QueryBudget, on_delete=models.CASCADE, related_name="spends")
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.budget_id} at {self.at.isoformat()}"
