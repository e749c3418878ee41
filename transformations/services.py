"""Writes for object definitions and transformations (contract §9). Every write takes the
caller's organization (and instance, at instance level): a tenant never touches another's."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from elements.framework.definition import Element
from instances.models import Instance
from platform_core.exceptions import Conflict, NotFound, ValidationFailed
from platform_core.validation import validate
from tenants.models import Organization
from transformations import schemas, selectors
from transformations.models import ObjectDefinition, Transformation

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")

SCRIPT_REFUSED = (
    "script: the platform never runs tenant code, so a transformation script is refused. "
    "Use the declarative options instead: object-level configuration passThrough "
    "{fromVendor, toVendor} and inherit; field-level configuration remove {fromVendor, toVendor} "
    "and transformDate {pattern, vendorPattern}; dot paths (address.city) and [*] arrays "
    "(items[*].name) in path and vendorPath; and a field type (string, number, boolean, date, "
    "array) to coerce values."
)


def _check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise ValidationFailed(
            "An object name is 1-100 letters, digits, _, - or . (not starting with . or -).",
            errors=[{"field": "name", "message": "must be 1-100 letters, digits, _, - or ."}],
        )
    return name


def _scoped(*, organization: Organization, instance: Instance | None) -> dict:
    return {"organization": organization, "instance": instance}


# --- definitions -------------------------------------------------------------------------------


def definition_create(
    *, organization: Organization, instance: Instance | None = None, name: str, body
) -> ObjectDefinition:
    _check_name(name)
    validate(schemas.DEFINITION_WRITE, body)
    if selectors.definition_find(organization=organization, instance=instance, name=name):
        raise Conflict(f"An object definition {name!r} already exists at this level.")
    try:
        with transaction.atomic():
            return ObjectDefinition.objects.create(
                **_scoped(organization=organization, instance=instance),
                name=name,
                fields=body["fields"],
            )
    except IntegrityError:  # a concurrent POST of the same name won
        raise Conflict(f"An object definition {name!r} already exists at this level.") from None


def definition_replace(
    *, organization: Organization, instance: Instance | None = None, name: str, body
) -> ObjectDefinition:
    definition = selectors.definition_get(organization=organization, instance=instance, name=name)
    validate(schemas.DEFINITION_WRITE, body)
    definition.fields = body["fields"]
    definition.save(update_fields=["fields", "updated_at"])
    return definition


def definition_delete(
    *, organization: Organization, instance: Instance | None = None, name: str
) -> None:
    """404 when missing; 409 while a transformation needs it (none other serves it)."""
    definition = selectors.definition_get(organization=organization, instance=instance, name=name)
    users = Transformation.objects.filter(object_name=name)
    if instance is not None:
        needed = users.filter(instance=instance).exists() and not selectors.definition_find(
            organization=organization, instance=None, name=name
        )
    else:
        org_wide = users.filter(organization=organization, instance__isnull=True).exists()
        # Instance transformations without a definition of their own rely on this one.
        own = ObjectDefinition.objects.filter(
            organization=organization, instance__isnull=False, name=name
        ).values("instance_id")
        relying = users.filter(organization=organization, instance__isnull=False).exclude(
            instance_id__in=own
        )
        needed = org_wide or relying.exists()
    if needed:
        raise Conflict(
            f"The object definition {name!r} is used by a transformation: delete that first."
        )
    definition.delete()


# --- transformations ---------------------------------------------------------------------------


def script_is_empty(script) -> bool:
    """Absent, null, "" or {"body": ""} (or {"body": null}) count as no script."""
    if script is None or script == "":
        return True
    if isinstance(script, dict):
        return set(script) <= {"body"} and script.get("body") in (None, "")
    return False


def _refuse_script(body) -> None:
    if isinstance(body, dict) and not script_is_empty(body.get("script")):
        raise ValidationFailed(
            SCRIPT_REFUSED, errors=[{"field": "script", "message": "is not supported"}]
        )


def _check_transformation(
    *, organization: Organization, instance: Instance | None, element: Element, name: str, body
) -> None:
    _check_name(name)
    _refuse_script(body)
    validate(schemas.TRANSFORMATION_WRITE, body)
    objects = {o.name for o in element.objects}
    if body["vendorName"] not in objects:
        raise ValidationFailed(
            f"vendorName {body['vendorName'][:100]!r} is not an object of the {element.key} "
            f"element ({', '.join(sorted(objects))}).",
            errors=[{"field": "vendorName", "message": "is not an object of the element"}],
        )
    # A native resource path always reaches the element itself.
    native = {op.path.strip("/").split("/")[0] for op in element.resource_operations}
    if name in native:
        raise ValidationFailed(
            f"{name!r} is one of the {element.key} element's own resources: give the "
            "transformation another name.",
            errors=[{"field": "name", "message": "is a resource of the element"}],
        )
    paths = [f["path"] for f in body["fields"]]
    if len(paths) != len(set(paths)):
        raise ValidationFailed(
            "Each field path may be mapped once.",
            errors=[{"field": "fields", "message": "a path is mapped twice"}],
        )
    if not selectors.definition_serves(organization=organization, instance=instance, name=name):
        raise ValidationFailed(
            f"Define the object {name!r} first (POST .../objects/{name}/definitions): a "
            "transformation needs a definition at its own level or above.",
            errors=[{"field": "name", "message": "has no object definition"}],
        )


def transformation_create(
    *,
    organization: Organization,
    element: Element,
    instance: Instance | None = None,
    name: str,
    body,
) -> Transformation:
    _check_transformation(
        organization=organization, instance=instance, element=element, name=name, body=body
    )
    if selectors.transformation_find(
        organization=organization, name=name, element_key=element.key, instance=instance
    ):
        raise Conflict(f"A transformation {name!r} already exists at this level.")
    try:
        with transaction.atomic():
            return Transformation.objects.create(
                **_scoped(organization=organization, instance=instance),
                element_key=element.key,
                object_name=name,
                vendor_name=body["vendorName"],
                fields=body["fields"],
                configuration=body.get("configuration") or [],
            )
    except IntegrityError:
        raise Conflict(f"A transformation {name!r} already exists at this level.") from None


def transformation_replace(
    *,
    organization: Organization,
    element: Element,
    instance: Instance | None = None,
    name: str,
    body,
) -> Transformation:
    _refuse_script(body)
    transformation = selectors.transformation_get(
        organization=organization, name=name, element_key=element.key, instance=instance
    )
    _check_transformation(
        organization=organization, instance=instance, element=element, name=name, body=body
    )
    transformation.vendor_name = body["vendorName"]
    transformation.fields = body["fields"]
    transformation.configuration = body.get("configuration") or []
    transformation.save(update_fields=["vendor_name", "fields", "configuration", "updated_at"])
    return transformation


def transformation_delete(
    *,
    organization: Organization,
    element_key: str | None = None,
    instance: Instance | None = None,
    name: str,
) -> None:
    selectors.transformation_get(
        organization=organization, name=name, element_key=element_key, instance=instance
    ).delete()


def transformations_delete_all(
    *, organization: Organization, element_key: str | None = None, instance: Instance | None = None
) -> int:
    found = selectors.transformation_list(
        organization=organization, element_key=element_key, instance=instance
    )
    if not found:
        raise NotFound("There are no transformations at this level.")
    Transformation.objects.filter(pk__in=[t.pk for t in found]).delete()
    return len(found)
