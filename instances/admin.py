"""Admin UI for instances (contract §3).

Instances are created through the API only. Operators can rename and re-tag them, disable and
enable them, rotate their token and re-verify their credentials. The configuration is shown only
masked (every secret field as ``********``); the token, its hash and the encrypted blobs are
never rendered, and a rotated token is not displayed (its owner reads it through the API).
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from elements.framework.configuration import MASK, masked_configuration
from elements.framework.registry import element_by_key
from elements.framework.vendor import VendorError
from instances.crypto import CredentialsUnreadable
from instances.models import Instance
from instances.services import (
    clean_name,
    configuration_of,
    instance_rotate_token,
    instance_set_enabled,
    instance_update,
    instance_verify,
)
from platform_core.admin_base import PlatformAdmin, tenant_column
from platform_core.exceptions import ValidationFailed
from platform_core.validation import text_errors

MAX_TAGS = 50
MAX_TAG_LENGTH = 100


class TagsField(forms.CharField):
    """The tag list as one tag a line."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(tag) for tag in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        tags = [line.strip() for line in text.splitlines() if line.strip()]
        return list(dict.fromkeys(tags))

    def validate(self, value):
        if len(value) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        for tag in value:
            if len(tag) > MAX_TAG_LENGTH:
                raise forms.ValidationError(f"A tag is at most {MAX_TAG_LENGTH} characters.")
        # The tags are a list, which CharField's own NUL check does not look into; PostgreSQL
        # stores neither a NUL nor a lone surrogate (a DataError, a 500).
        problems = text_errors(value, reject_nul=True)
        if problems:
            raise forms.ValidationError(f"A tag {problems[0]['message']}.")


class InstanceForm(forms.ModelForm):
    tags = TagsField(required=False, help_text="One tag a line.")

    class Meta:
        model = Instance
        fields = ("name", "tags")

    def clean_name(self):
        try:
            return clean_name(self.cleaned_data["name"])
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from None


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _label(instance: Instance) -> str:
    return f"“{instance.name}” (#{instance.pk})"


# One instance at a time; each returns (message level, message). Used by the list actions and
# by the buttons on the change page.


def _set_enabled(instance: Instance, enabled: bool) -> tuple[int, str]:
    instance_set_enabled(instance=instance, enabled=enabled)
    state = "enabled" if enabled else "disabled"
    return messages.SUCCESS, f"Instance {_label(instance)} is now {state}."


def _rotate_token(instance: Instance) -> tuple[int, str]:
    instance_rotate_token(instance=instance)  # the new token is deliberately not kept
    return messages.SUCCESS, (
        f"Token of instance {_label(instance)} rotated: the old token no longer works. "
        f"The owner reads the new one through the API (GET /elements/api-v2/instances/"
        f"{instance.pk})."
    )


def _verify(instance: Instance) -> tuple[int, str]:
    if element_by_key(instance.element_key) is None:
        return messages.ERROR, (
            f"Instance {_label(instance)} cannot be verified: no element "
            f"“{instance.element_key}” is installed."
        )
    try:
        valid = instance_verify(instance=instance)
    except CredentialsUnreadable:
        return messages.ERROR, (
            f"Instance {_label(instance)} cannot be verified: its stored configuration cannot "
            "be decrypted with the configured CREDENTIALS_KEYS."
        )
    except VendorError as exc:
        # Only the platform's own words and the vendor's status: a vendor message may echo input.
        status = f" (vendor status {exc.provider_status})" if exc.provider_status else ""
        return messages.WARNING, (
            f"Instance {_label(instance)} could not be verified now: {exc.message}{status} "
            "Its valid flag is unchanged."
        )
    if valid:
        return messages.SUCCESS, f"Instance {_label(instance)} verified: the credentials are valid."
    return messages.WARNING, (
        f"Instance {_label(instance)} verified: the vendor rejected the credentials; it is now "
        "marked invalid."
    )


OPERATIONS = {
    # url name suffix: (button label, function, admin log message)
    "disable": ("Disable", lambda i: _set_enabled(i, False), "Disabled the instance."),
    "enable": ("Enable", lambda i: _set_enabled(i, True), "Enabled the instance."),
    "rotate_token": ("Rotate token", _rotate_token, "Rotated the instance token."),
    "verify": ("Verify now", _verify, "Verified the instance credentials."),
}


@admin.register(Instance)
class InstanceAdmin(PlatformAdmin):
    form = InstanceForm
    change_form_template = "admin/instances/instance/change_form.html"
    list_display = (
        "id",
        "name",
        "element_key",
        "tenant_user",
        "tenant_organization",
        "state",
        "valid",
        "created_at",
    )
    list_display_links = ("id", "name")
    list_filter = ("element_key", "disabled", "valid")
    list_select_related = ("user__organization",)
    search_fields = ("name",)
    actions = ("disable_instances", "enable_instances", "rotate_tokens", "verify_instances")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "tags",
                    "element_key",
                    "tenant_user",
                    "tenant_organization",
                )
            },
        ),
        (
            "State",
            {"fields": ("state", "valid", "trace_logging_enabled", "created_at", "updated_at")},
        ),
        (
            "Configuration",
            {
                "fields": ("configuration",),
                "description": (
                    "Secret values are masked. The configuration is changed only through the "
                    "API, which re-encrypts and re-verifies it."
                ),
            },
        ),
    )
    readonly_fields = (
        "id",
        "element_key",
        "tenant_user",
        "tenant_organization",
        "state",
        "valid",
        "trace_logging_enabled",
        "created_at",
        "updated_at",
        "configuration",
    )

    # -- permissions -----------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # instances are created through the API, with verified credentials

    # -- columns and read-only fields --------------------------------------------------------

    tenant_user = tenant_column("user", "user")
    tenant_organization = tenant_column("user__organization", "organization")

    @admin.display(description="state", ordering="disabled")
    def state(self, obj):
        return "disabled" if obj.disabled else "enabled"

    @admin.display(description="configuration (masked)")
    def configuration(self, obj):
        try:
            stored = configuration_of(obj)
        except CredentialsUnreadable:
            return "The stored configuration cannot be decrypted with the configured keys."
        element = element_by_key(obj.element_key)
        if element is None:
            # Without the definition nothing says which keys are secret: mask them all.
            shown = {key: MASK for key in stored}
        else:
            shown = masked_configuration(element, stored)
        if not shown:
            return "(empty)"
        rows = format_html_join(
            "\n",
            "<tr><th scope='row'>{}</th><td><code>{}</code></td></tr>",
            ((key, _plain(value)) for key, value in shown.items()),
        )
        return format_html(
            '<table class="instance-configuration"><thead><tr><th>key</th><th>value</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # -- saving ------------------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # Only the two editable columns are written: never the token or configuration columns
        # of this (possibly stale) copy.
        instance_update(
            instance=obj, name=form.cleaned_data["name"], tags=form.cleaned_data["tags"]
        )

    # -- list actions ------------------------------------------------------------------------

    def _run_on_selection(self, request, queryset, operation: str):
        _, function, log_message = OPERATIONS[operation]
        for instance in queryset.select_related("user"):
            level, message = function(instance)
            self.log_change(request, instance, log_message)
            self.message_user(request, message, level)

    @admin.action(description="Disable selected instances", permissions=["change"])
    def disable_instances(self, request, queryset):
        self._run_on_selection(request, queryset, "disable")

    @admin.action(description="Enable selected instances", permissions=["change"])
    def enable_instances(self, request, queryset):
        self._run_on_selection(request, queryset, "enable")

    @admin.action(description="Rotate token of selected instances", permissions=["change"])
    def rotate_tokens(self, request, queryset):
        self._run_on_selection(request, queryset, "rotate_token")

    @admin.action(description="Verify selected instances now", permissions=["change"])
    def verify_instances(self, request, queryset):
        self._run_on_selection(request, queryset, "verify")

    # -- buttons on the change page (POST only, CSRF-protected by admin_view) ----------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                f"<path:object_id>/{operation.replace('_', '-')}/",
                self.admin_site.admin_view(self._operation_view(operation)),
                name="{}_{}_{}".format(*info, operation),
            )
            for operation in OPERATIONS
        ]
        return custom + super().get_urls()

    def _operation_view(self, operation: str):
        @require_POST
        def view(request, object_id):
            instance = self.get_object(request, unquote(object_id))
            if instance is None:
                return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
            if not self.has_change_permission(request, instance):
                raise PermissionDenied
            _, function, log_message = OPERATIONS[operation]
            level, message = function(instance)
            self.log_change(request, instance, log_message)
            self.message_user(request, message, level)
            return HttpResponseRedirect(
                reverse(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                    args=(instance.pk,),
                    current_app=self.admin_site.name,
                )
            )

        return view

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        buttons = []
        if obj is not None and self.has_change_permission(request, obj):
            for operation, (label, _, _) in OPERATIONS.items():
                if (operation == "disable" and obj.disabled) or (
                    operation == "enable" and not obj.disabled
                ):
                    continue
                url = reverse(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_{operation}",
                    args=(obj.pk,),
                    current_app=self.admin_site.name,
                )
                buttons.append((url, label, operation.replace("_", "-")))
        context["instance_buttons"] = buttons
        return super().render_change_form(request, context, add, change, form_url, obj)
