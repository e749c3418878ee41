"""Admin UI for events: the events found, the notifications that carry them with each delivery
attempt, and the pollers. Read-only except for one action, redeliver, which needs the change
permission of events (``change_event``) or of notifications, and is written to the admin log.
Records the vendor showed (``Event.encrypted_record``) and pollers' cursors are neither shown
nor filterable: tenant data, no operator's business."""

from django.contrib import admin, messages
from django.db import transaction

from events import services
from events.models import Delivery, Event, Notification, Poller
from platform_core.admin_base import SECRET_FIELDS, PlatformAdmin


class ReadOnlyAdmin(PlatformAdmin):
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Forms are read-only: never a save, whatever the permissions.
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    def has_operate_permission(self, request, obj=None):
        """Redelivering changes state: the change permission, on any method."""
        return super().has_change_permission(request, obj)


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "instance",
        "object_type",
        "event_type",
        "object_id",
        "status",
        "event_date",
        "notification",
    )
    list_filter = ("status", "object_type", "event_type")
    list_select_related = ("instance", "notification")
    search_fields = ("=id", "object_id")
    fields = (
        "id",
        "instance",
        "object_type",
        "event_type",
        "object_id",
        "version",
        "event_date",
        "created_at",
        "status",
        "notification",
    )
    readonly_fields = fields
    actions = ("redeliver",)

    @admin.action(description="Redeliver the selected events", permissions=("operate",))
    def redeliver(self, request, queryset):
        count = 0
        with transaction.atomic():
            for event in queryset.select_related("notification"):
                services.event_redeliver(event=event)
                self.log_change(request, event, "Queued the event for redelivery.")
                count += 1
        self.message_user(request, f"{count} event(s) queued for redelivery.", messages.SUCCESS)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("attempt", "date", "status", "response_status", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "message_id", "instance", "object_type", "status", "attempts", "next_at")
    list_filter = ("status", "object_type")
    list_select_related = ("instance",)
    search_fields = ("=id", "=message_id")
    fields = (
        "id",
        "message_id",
        "instance",
        "object_type",
        "status",
        "attempts",
        "next_at",
        "last_error",
        "created_at",
        "delivered_at",
    )
    readonly_fields = fields
    inlines = (DeliveryInline,)
    actions = ("redeliver",)

    @admin.action(description="Redeliver the selected notifications", permissions=("operate",))
    def redeliver(self, request, queryset):
        count = 0
        with transaction.atomic():
            for notification in queryset:
                event = notification.events.first()
                if event is not None:
                    services.event_redeliver(event=event)
                    self.log_change(request, notification, "Queued the notification again.")
                    count += 1
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "notification", "attempt", "date", "status", "response_status")
    list_filter = ("status",)
    list_select_related = ("notification",)
    fields = ("id", "notification", "attempt", "date", "status", "response_status", "error")
    readonly_fields = fields


@admin.register(Poller)
class PollerAdmin(ReadOnlyAdmin):
    hidden_fields = SECRET_FIELDS | {"state"}  # the element's cursors: not shown
    list_display = (
        "id",
        "instance",
        "object_name",
        "interval_seconds",
        "next_run_at",
        "polls",
        "failures",
        "last_polled_at",
    )
    list_select_related = ("instance",)
    fields = (
        "id",
        "instance",
        "object_name",
        "interval_seconds",
        "next_run_at",
        "lease_until",
        "polls",
        "failures",
        "last_polled_at",
        "last_error",
    )
    readonly_fields = fields
