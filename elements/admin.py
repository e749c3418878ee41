"""Admin UI for the element catalog: a read-only view of the mirror of the definitions.

``ElementRecord`` is rewritten from ``elements/<key>/`` after every ``migrate``; an element is
changed by changing its folder, never here.
"""

from django.contrib import admin

from elements.models import ElementRecord
from platform_core.admin_base import PlatformAdmin


@admin.register(ElementRecord)
class ElementRecordAdmin(PlatformAdmin):
    list_display = ("key", "name", "hub", "auth_type", "operation_count")
    list_display_links = ("key", "name")
    search_fields = ("key", "name")
    list_filter = ("hub", "auth_type")
    fields = (
        "element_id",
        "key",
        "name",
        "hub",
        "auth_type",
        "operation_count",
        "description",
    )
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
