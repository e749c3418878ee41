"""Definitions and transformations as the API shows them (Cloud Elements' shapes)."""

from transformations.models import ObjectDefinition, Transformation


def definition_representation(definition: ObjectDefinition) -> dict:
    return {"name": definition.name, "level": definition.level, "fields": definition.fields}


def transformation_representation(transformation: Transformation) -> dict:
    body = {
        "objectName": transformation.object_name,
        "vendorName": transformation.vendor_name,
        "level": transformation.level,
        "element": {"key": transformation.element_key},
        "fields": transformation.fields,
        "configuration": transformation.configuration,
        "isLegacy": False,
        "startDate": transformation.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    if transformation.instance_id:
        body["instanceId"] = transformation.instance_id
    return body
