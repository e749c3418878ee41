"""Who may do what, beyond being authenticated."""

from rest_framework.permissions import BasePermission

from platform_core.exceptions import InstanceDisabled


def require_enabled(instance) -> None:
    """Element calls on a disabled instance are 403 (contract §3)."""
    if getattr(instance, "disabled", False):
        raise InstanceDisabled()


class InstanceEnabled(BasePermission):
    """``require_enabled`` for DRF views."""

    def has_permission(self, request, view):
        if request.auth is not None:
            require_enabled(request.auth.instance)
        return True
