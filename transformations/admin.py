"""Admin UI for object definitions and transformations: operators can read them and delete
them; tenants write them through the API (contract §9), which checks what the admin cannot."""

from django.contrib import admin

from platform_core.admin_base import PlatformAdmin, tenant_column
from transformations.models import ObjectDefinition, Transformation


class _ReadAndDeleteAdmin(PlatformAdmin):
    list_select_related = ("organization", "instance")
    actions = None
    tenant_organization = tenant_column("organization", "organization")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="level")
    def level(self, obj):
        return obj.level


@admin.register(ObjectDefinition)
class ObjectDefinitionAdmin(_ReadAndDeleteAdmin):
    list_display = ("name", "level", "tenant_organization", "instance", "updated_at")
    search_fields = ("name",)
    fields = ("name", "tenant_organization", "instance", "fields", "created_at", "updated_at")
    readonly_fields = fields


@admin.register(Transformation)
class TransformationAdmin(_ReadAndDeleteAdmin):
    list_display = (
        "object_name",
        "vendor_name",
        "element_key",
        "level",
        "tenant_organization",
        "instance",
    )
    list_filter = ("element_key",)
    search_fields = ("object_name", "vendor_name")
    fields = (
        "object_name",
        "element_key",
        "vendor_name",
        "tenant_organization",
        "instance",
        "fields",
        "configuration",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
