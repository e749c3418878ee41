"""The admins the libraries register (django-axes' login attempts, Django's staff users and
groups), put on the platform's admin base (``platform_core/admin_base.py``): their changelists
refuse stray lookups and out-of-range dates (``?attempt_time__year=9999`` was a 500) like the
platform's own."""

from axes import admin as axes_admin  # registers axes' admins, replaced below
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User

from platform_core.admin_base import PlatformAdminMixin


class AccessAttemptAdmin(PlatformAdminMixin, axes_admin.AccessAttemptAdmin):
    # axes' "Clean up expired attempts" always fails (it reads ``request.axes_attempt_time``,
    # which only axes' login handling sets) and was offered to view-only staff. Not offered: a
    # lockout is lifted by deleting its row (Django's delete action, the delete permission) or
    # with axes' commands (README, "Admin login lockout").
    actions = ()


class AccessLogAdmin(PlatformAdminMixin, axes_admin.AccessLogAdmin):
    pass


class AccessFailureLogAdmin(PlatformAdminMixin, axes_admin.AccessFailureLogAdmin):
    pass


class UserAdmin(PlatformAdminMixin, auth_admin.UserAdmin):
    pass


class GroupAdmin(PlatformAdminMixin, auth_admin.GroupAdmin):
    pass


for model, model_admin in {
    AccessAttempt: AccessAttemptAdmin,
    AccessLog: AccessLogAdmin,
    AccessFailureLog: AccessFailureLogAdmin,
    User: UserAdmin,
    Group: GroupAdmin,
}.items():
    if admin.site.is_registered(model):  # axes' admin can be switched off (AXES_ENABLE_ADMIN)
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
