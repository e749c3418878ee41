"""What every admin class of the platform shares (``PlatformAdmin``; ``platform_core/admin.py``
puts axes' and Django's auth admins on the same footing).

- Tenant users and organizations are shown by id only ("user #1") to staff who may not view
  their model: their emails and names are no business of staff who only see instances or jobs.
- A changelist filters by what its list filters and date hierarchy produce, nothing else: any
  other lookup in the query string is refused before it reaches the database, where an invalid
  regex is a 500 and a hidden column an oracle (``?state__icontains=…``).
- Hidden columns (secret material, pollers' state, bulk checkpoints) are never filterable.
- An action on a selection that is not a list of row ids, and a form whose posted key is not a
  key, are refused like any other bad input, never a 500.
"""

import re
from contextvars import ContextVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_permission_codename
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

# Columns that hold secret material (hashes, ciphertext): never filterable from the URL, so the
# changelist cannot be used as an oracle on them (``?secret_hash__startswith=ab``).
SECRET_FIELDS = frozenset(
    {
        "secret_hash",
        "token_hash",
        "encrypted_token",
        "encrypted_configuration",
        "encrypted_record",
    }
)

# -- tenant users and organizations, as the staff user may see them ------------------------------

TENANT_NOUNS = {"tenants.tenantuser": "user", "tenants.organization": "organization"}

# Who is looking, for display methods (Django passes them the row only). Set for the rendering
# of the changelist and change form pages (``PlatformAdminMixin``); unset means nobody may see.
_viewer = ContextVar("admin_viewer", default=None)


def may_view(user, model) -> bool:
    """Django's admin rule for seeing a model's rows: its view or its change permission."""
    if user is None:
        return False
    opts = model._meta
    return any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )


def id_label(model, pk) -> str:
    return f"{TENANT_NOUNS[model._meta.label_lower]} #{pk}"


def tenant_label(obj):
    """A tenant user or organization as the staff user looking may see it: its name, linked to
    its admin page, with the permission to view its model; otherwise its id only."""
    if obj is None:
        return None  # the admin's empty value
    if not may_view(_viewer.get(), type(obj)):
        return id_label(type(obj), obj.pk)
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj)


def tenant_column(path: str, description: str):
    """A display method (for list_display and readonly_fields) showing the tenant user or
    organization at ``path`` of a row (``"user__organization"``) by ``tenant_label``."""

    @admin.display(description=description, ordering=path)
    def column(modeladmin, obj):
        for name in path.split("__"):
            obj = getattr(obj, name, None)
        return tenant_label(obj)

    return column


class TenantRelatedFilter(admin.RelatedFieldListFilter):
    """A filter by tenant user or organization that names them by id only to staff who may not
    view their model."""

    def field_choices(self, field, request, model_admin):
        choices = super().field_choices(field, request, model_admin)
        if may_view(request.user, field.related_model):
            return choices
        return [(pk, id_label(field.related_model, pk)) for pk, _ in choices]


def _rendered_for(request, view, *args):
    """Runs an admin view and renders its page while display methods can tell who is looking
    (a TemplateResponse is otherwise rendered after the view has returned)."""
    token = _viewer.set(request.user)
    try:
        response = view(*args)
        if not getattr(response, "is_rendered", True):
            response.render()
        return response
    finally:
        _viewer.reset(token)


# -- changelist lookups --------------------------------------------------------------------------

# Django builds a date from the date hierarchy's values itself: a year past 9998 (there is no
# year after it to end the range) or a 20-digit number overflows there, a 500.
DATE_HIERARCHY_RANGES = {"year": (1, 9998), "month": (1, 12), "day": (1, 31)}


class StrictChangeList(ChangeList):
    """Filters by the list filters and the date hierarchy only. Django applies any other
    ``field__lookup=value`` of the query string as is: ``?name__regex=(`` is a DataError and
    ``?state__icontains=`` reads a column the admin does not show. Refused (400) here, like
    Django refuses a lookup its ``lookup_allowed`` does not allow. (The project has no raw-id
    popups, whose ``limit_choices_to`` lookups Django would let through.)"""

    def get_filters(self, request):
        self._check_date_hierarchy()
        filters = super().get_filters(request)
        # Each list filter took its own parameters, and the date hierarchy turned its values into
        # a range; whatever is left came from the query string alone.
        stray = set(filters[2]) - self._date_hierarchy_range()
        if stray:
            raise DisallowedModelAdminLookup(f"Filtering by {min(stray)} not allowed")
        return filters

    def _date_hierarchy_range(self) -> set[str]:
        if self.date_hierarchy and f"{self.date_hierarchy}__year" in self.filter_params:
            return {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"}
        return set()

    def _check_date_hierarchy(self) -> None:
        if not self.date_hierarchy:
            return
        for part, (low, high) in DATE_HIERARCHY_RANGES.items():
            for value in self.filter_params.get(f"{self.date_hierarchy}__{part}", ()):
                if not (re.fullmatch(r"[0-9]{1,4}", value) and low <= int(value) <= high):
                    raise IncorrectLookupParameters(f"{part} out of range")


# -- forms ---------------------------------------------------------------------------------------


def _is_key(field, value) -> bool:
    try:
        field.to_python(value)
    except ValidationError:
        return False
    return True


class KeyCheckingAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete widget, which looks up the selected value to show it again when a
    form is refused: a posted value that is no key (``organization=abc``) is already the form's
    error, and is not looked up (a ValueError, a 500)."""

    def optgroups(self, name, value, attr=None):
        keys = [v for v in value if _is_key(self.field.target_field, v)]
        return super().optgroups(name, keys, attr)


# -- the base classes ----------------------------------------------------------------------------


class NoSecretLookupsMixin:
    """Refuses (400) a changelist lookup on a hidden column; an admin adds its own to
    ``hidden_fields``."""

    hidden_fields = SECRET_FIELDS

    def lookup_allowed(self, lookup, value, request=None):
        if any(part in self.hidden_fields for part in lookup.split("__")):
            return False
        return super().lookup_allowed(lookup, value, request)


class PlatformAdminMixin(NoSecretLookupsMixin):
    """For every ModelAdmin of the site (see the module docstring)."""

    def get_changelist(self, request, **kwargs):
        return StrictChangeList

    def changelist_view(self, request, extra_context=None):
        return _rendered_for(request, super().changelist_view, request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return _rendered_for(
            request, super().changeform_view, request, object_id, form_url, extra_context
        )

    def response_action(self, request, queryset):
        # Selected rows are primary keys; anything else (``_selected_action=abc``) would raise
        # ValueError in the action's query.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_key(self.opts.pk, value) for value in selected):
            self.message_user(
                request, "The selection is not a list of row ids: nothing was done.", messages.ERROR
            )
            return None  # back to the list
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = KeyCheckingAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        model = db_field.related_model
        if (
            formfield is not None
            and model._meta.label_lower in TENANT_NOUNS
            and not may_view(request.user, model)
        ):
            # The selected option shown again on a refused form: its id, not its name.
            formfield.label_from_instance = lambda obj: id_label(model, obj.pk)
        return formfield


class PlatformAdmin(PlatformAdminMixin, admin.ModelAdmin):
    """The base of every ModelAdmin of the project."""
