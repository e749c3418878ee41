"""Reads: definitions and transformations of a caller, and the transformation an element call
resolves to (instance level over organization level, merged when it says ``inherit``)."""

from __future__ import annotations

from elements.framework.definition import Element
from elements.framework.mapping import FieldMapping, Mapping
from instances.models import Instance
from platform_core.exceptions import NotFound
from tenants.models import Organization
from transformations.models import ObjectDefinition, Transformation


def _scope(model, *, organization: Organization, instance: Instance | None):
    if instance is not None:
        return model.objects.filter(instance=instance)
    return model.objects.filter(organization=organization, instance__isnull=True)


def definition_list(
    *, organization: Organization, instance: Instance | None = None
) -> list[ObjectDefinition]:
    return list(_scope(ObjectDefinition, organization=organization, instance=instance))


def definition_find(
    *, organization: Organization, instance: Instance | None, name: str
) -> ObjectDefinition | None:
    return (
        _scope(ObjectDefinition, organization=organization, instance=instance)
        .filter(name=name)
        .first()
    )


def definition_get(
    *, organization: Organization, instance: Instance | None = None, name: str
) -> ObjectDefinition:
    found = definition_find(organization=organization, instance=instance, name=name)
    if found is None:
        raise NotFound(f"No object definition {name[:100]!r} at this level.")
    return found


def definition_serves(*, organization: Organization, instance: Instance | None, name: str) -> bool:
    """Whether a definition of ``name`` exists at this level or above (an organization
    definition serves the organization's instances)."""
    if instance is not None and definition_find(
        organization=organization, instance=instance, name=name
    ):
        return True
    return definition_find(organization=organization, instance=None, name=name) is not None


def transformation_list(
    *, organization: Organization, element_key: str | None = None, instance: Instance | None = None
) -> list[Transformation]:
    qs = _scope(Transformation, organization=organization, instance=instance)
    if instance is None:
        qs = qs.filter(element_key=element_key)
    return list(qs)


def transformation_find(
    *,
    organization: Organization,
    name: str,
    element_key: str | None = None,
    instance: Instance | None = None,
) -> Transformation | None:
    qs = _scope(Transformation, organization=organization, instance=instance)
    if instance is None:
        qs = qs.filter(element_key=element_key)
    return qs.filter(object_name=name).first()


def transformation_get(
    *,
    organization: Organization,
    name: str,
    element_key: str | None = None,
    instance: Instance | None = None,
) -> Transformation:
    found = transformation_find(
        organization=organization, name=name, element_key=element_key, instance=instance
    )
    if found is None:
        raise NotFound(f"No transformation {name[:100]!r} at this level.")
    return found


def _for_instance(instance: Instance, name: str | None = None):
    """The instance's own transformations and its organization's for its element."""
    organization_id = instance.user.organization_id
    qs = Transformation.objects.filter(instance=instance) | Transformation.objects.filter(
        organization_id=organization_id, instance__isnull=True, element_key=instance.element_key
    )
    if name is not None:
        qs = qs.filter(object_name=name)
    return list(qs)


def _merged(own: Transformation, parent: Transformation | None) -> dict:
    """The instance level over the organization level; with ``inherit`` the two merge (the
    instance's fields and configuration win per path and per type)."""
    if parent is None or not own.has_configuration("inherit"):
        return {
            "vendorName": own.vendor_name,
            "fields": own.fields,
            "configuration": own.configuration,
        }
    fields = {f["path"]: f for f in parent.fields}
    fields.update({f["path"]: f for f in own.fields})
    configuration = {c["type"]: c for c in parent.configuration}
    configuration.update({c["type"]: c for c in own.configuration})
    return {
        "vendorName": own.vendor_name,
        "fields": list(fields.values()),
        "configuration": list(configuration.values()),
    }


def effective_transformation(*, instance: Instance, name: str) -> dict | None:
    """What ``/hubs/{hub}/{name}`` means for this instance: ``{vendorName, fields,
    configuration}``, or None when it has no transformation of that name."""
    rows = _for_instance(instance, name)
    own = next((t for t in rows if t.instance_id), None)
    parent = next((t for t in rows if not t.instance_id), None)
    if own is not None:
        return _merged(own, parent)
    if parent is not None:
        return _merged(parent, None)
    return None


def transformed_names(*, instance: Instance) -> list[str]:
    return sorted({t.object_name for t in _for_instance(instance)})


def _flags(configuration: list, kind: str) -> dict:
    entry = next((c for c in configuration if c.get("type") == kind), {})
    return entry.get("properties") or {}


def _field_mapping(spec: dict) -> FieldMapping:
    configuration = spec.get("configuration") or []
    remove = next((c for c in configuration if c.get("type") == "remove"), None)
    remove_flags = (remove.get("properties") or {}) if remove else {}
    date = next((c for c in configuration if c.get("type") == "transformDate"), None)
    date_props = (date or {}).get("properties") or {}
    return FieldMapping(
        path=spec["path"],
        vendor_path=spec["vendorPath"],
        type=spec.get("type"),
        # remove with no properties removes the field both ways
        remove_from_vendor=bool(remove) and remove_flags.get("fromVendor", True),
        remove_to_vendor=bool(remove) and remove_flags.get("toVendor", True),
        date_pattern=date_props.get("pattern"),
        vendor_date_pattern=date_props.get("vendorPattern"),
    )


def mapping_of(element: Element, name: str, transformation: dict) -> Mapping:
    """The resolved transformation as the framework applies it."""
    obj = next((o for o in element.objects if o.name == transformation["vendorName"]), None)
    pass_through = _flags(transformation["configuration"], "passThrough")
    options = {}
    if obj is not None and obj.write_path is not None:
        options["write_path"] = obj.write_path
    if obj is not None and obj.where_field is not None:
        options["where_field"] = obj.where_field
    return Mapping(
        name=name,
        vendor_name=transformation["vendorName"],
        fields=tuple(_field_mapping(f) for f in transformation["fields"]),
        pass_through_from_vendor=pass_through.get("fromVendor", True),
        pass_through_to_vendor=pass_through.get("toVendor", True),
        **options,
    )


def mapping_for(*, instance: Instance, element: Element, name: str) -> Mapping | None:
    transformation = effective_transformation(instance=instance, name=name)
    if transformation is None:
        return None
    return mapping_of(element, name, transformation)


def object_fields(*, instance: Instance, name: str) -> list[dict]:
    """The fields of the object ``name`` as the instance sees it: the organization's
    definition, with the instance's own definition's fields over it."""
    rows = ObjectDefinition.objects.filter(
        organization_id=instance.user.organization_id, instance__isnull=True, name=name
    ) | ObjectDefinition.objects.filter(instance=instance, name=name)
    fields: dict[str, dict] = {}
    for definition in sorted(rows, key=lambda d: d.instance_id is not None):
        fields.update({f["path"]: f for f in definition.fields})
    return list(fields.values())
