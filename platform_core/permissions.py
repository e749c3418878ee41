"""Who may do what, beyond being authenticated."""

from rest_framework.permissions import BasePermission

from platform_core.exceptions import InstanceDisabled


class InstanceEnabled(BasePermission):
    """Element calls on a disabled instance are 403 (contract §3)."""

    def has_permission(self, request, view):
        auth = request.auth
        if auth is not None and getattr(auth.instance, "disabled", False):
            raise InstanceDisabled()
        return True
