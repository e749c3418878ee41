"""Element calls on a transformed object (contract §9): ``/hubs/{hub}/{name}[/{id}]`` for an
instance with a transformation ``name`` runs the element's ``vendorName`` operation, with the
body mapped to the vendor, ``where`` field names rewritten, and records mapped back.

The seams: ``ResourceCallView`` (elements/api.py) asks ``resolve`` when a path names no resource
of the element, and shows transformed objects in ``/objects`` and ``/objects/{name}/metadata``;
the bulk runner maps its pages with the same ``Mapping``.
"""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed

from elements.framework import dispatch
from elements.framework.ceql import CeqlError
from elements.framework.definition import Element, Operation
from elements.framework.mapping import Mapping
from elements.framework.requirements import needs_representation
from elements.framework.vendor import VendorGarbage
from instances.models import Instance
from platform_core import nesting
from platform_core.authentication import credentials_of
from platform_core.exceptions import ValidationFailed
from transformations import selectors


def _split(resource_path: str) -> tuple[str, str]:
    """``customer/12`` -> (``customer``, ``/12``)."""
    name, _, rest = resource_path.strip("/").partition("/")
    return name, f"/{rest}" if rest else ""


def may_be_transformed(request, resource_path: str) -> bool:
    """Before authentication: whether ``{name}`` or ``{name}/{id}`` could be a transformed
    object of the caller's (else the path names nothing: 404). Only the caller's instance can
    say, so an element call (an ``Element`` credential) is authenticated first; a path without
    one is 404 at once, and which names other tenants use is never told."""
    parts = resource_path.strip("/").split("/")
    if len(parts) > 2 or not parts[0]:
        return False
    try:
        credentials = credentials_of(request)
    except AuthenticationFailed:
        return False
    return credentials is not None and "element" in credentials


def resolve(
    instance: Instance, element: Element, method: str, resource_path: str
) -> tuple[Operation, dict, Mapping] | None:
    """The element operation a transformed path stands for, or None (not transformed here)."""
    name, rest = _split(resource_path)
    mapping = selectors.mapping_for(instance=instance, element=element, name=name)
    if mapping is None:
        return None
    op, path_params = dispatch.match_resource(element, method, f"/{mapping.vendor_name}{rest}")
    return op, path_params, mapping


def _vendor_body(mapping: Mapping, op: Operation, body):
    if isinstance(body, list):
        return [mapping.to_vendor(item) for item in body]
    vendor = mapping.to_vendor(body)
    if isinstance(vendor, dict) and op.path_params:
        # The record's id travels in the path: a mapped id in the body is not sent again.
        accepted = {name for name, _ in op.properties_in("body")}
        for key in {"id", mapping.write_path("id")} - accepted:
            vendor.pop(key, None)
    return vendor


def _vendor_query(mapping: Mapping, query: dict[str, list[str]]) -> dict[str, list[str]]:
    if "where" not in query:
        return query
    try:
        where = [mapping.vendor_where(text) for text in query["where"]]
    except CeqlError as exc:
        raise ValidationFailed(
            f"where: {exc}", errors=[{"field": "where", "message": str(exc)}]
        ) from None
    return {**query, "where": where}


def vendor_inputs(
    mapping: Mapping,
    op: Operation,
    *,
    raw: bytes,
    content_type: str,
    query: dict[str, list[str]],
    path_params: dict,
) -> dict:
    """The operation's inputs from a request in the tenant's shape."""
    body = dispatch.parse_body(raw, content_type=content_type)
    if body is not None:
        # The body is bounded (parse_body); the mapping's paths may nest it deeper.
        raw = nesting.encode(_vendor_body(mapping, op, body))
        content_type = "application/json"
    return dispatch.request_inputs(
        op,
        raw=raw,
        content_type=content_type,
        query=_vendor_query(mapping, query),
        path_params=path_params,
        may_stay_raw=False,
    )


def tenant_body(mapping: Mapping, body):
    """An operation's answer in the tenant's shape: each record mapped from the vendor."""
    try:
        if isinstance(body, list):
            return [mapping.from_vendor(item) for item in body]
        return mapping.from_vendor(body)
    except RecursionError:  # a record deeper than copy.deepcopy goes; what is sent is bounded
        raise VendorGarbage("The vendor's answer is nested too deeply to map.") from None


def with_transformed_objects(instance: Instance, names: list) -> list:
    """``GET /objects``: the element's objects, then the instance's transformed ones."""
    return names + [n for n in selectors.transformed_names(instance=instance) if n not in names]


def transformed_metadata(instance: Instance, element: Element, name: str) -> dict | None:
    """``GET /objects/{name}/metadata`` of a transformed object (None: not transformed)."""
    transformation = selectors.effective_transformation(instance=instance, name=name)
    if transformation is None:
        return None
    vendor_paths = {f["path"]: f["vendorPath"] for f in transformation["fields"]}
    fields = selectors.object_fields(instance=instance, name=name)
    vendor_name = transformation["vendorName"]
    vendor_object = next((o for o in element.bulk_objects if o.name == vendor_name), None)
    # A bulk job of the transformed object reads the vendor object: it needs what that needs.
    bulk = (
        {"bulkRequiredConfiguration": needs_representation(vendor_object)}
        if vendor_object is not None
        else {}
    )
    return {
        "name": name,
        "description": f"{name}: a transformation of the {element.key} {vendor_name} object.",
        "vendorName": transformation["vendorName"],
        "fields": [
            {
                "path": f["path"],
                "type": f["type"],
                **({"vendorPath": vendor_paths[f["path"]]} if f["path"] in vendor_paths else {}),
            }
            for f in fields
        ],
        **bulk,
    }


# --- the element's OpenAPI document ------------------------------------------------------------

_OPENAPI_TYPES = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "description": "A date, as its transformDate pattern writes it."},
    "array": {"type": "array"},
}


def record_schema(fields: list[dict]) -> dict:
    """A definition's fields (dot paths, ``[*]`` arrays) as one JSON Schema object; unmapped
    fields may pass through, so other properties are allowed."""
    root: dict = {"type": "object", "properties": {}}
    for spec in fields:
        node = root
        parts = spec["path"].split(".")
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            name, star = part.removesuffix("[*]"), part.endswith("[*]")
            properties = node.setdefault("properties", {})
            if last and not star:
                properties[name] = dict(_OPENAPI_TYPES.get(spec["type"], {}))
                break
            child = properties.setdefault(name, {"type": "array", "items": {"type": "object"}})
            if star:
                node = child.setdefault("items", {"type": "object"})
                if last:
                    node.update(_OPENAPI_TYPES.get(spec["type"], {}))
            else:
                child.update({"type": "object"})
                child.pop("items", None)
                node = child
    return root


def with_transformed_paths(document: dict, element: Element, transformations, definitions) -> dict:
    """``GET /elements/{key}/docs`` for a caller: the element's paths plus, for each of the
    organization's transformations of it, the vendor object's paths under the object's name,
    with its definition's record shape. ``definitions``: fields by object name."""
    paths = document["paths"]
    prefix = f"/hubs/{element.hub}"
    for transformation in transformations:
        vendor = f"{prefix}/{transformation.vendor_name}"
        record = record_schema(definitions.get(transformation.object_name, []))
        for path, item in list(paths.items()):
            if path != vendor and not path.startswith(vendor + "/{"):
                continue
            new_item = {}
            for method, operation in item.items():
                copied = {
                    **operation,
                    "operationId": f"{transformation.object_name}.{operation['operationId']}",
                    "tags": [transformation.object_name],
                    "x-transformation": {
                        "objectName": transformation.object_name,
                        "vendorName": transformation.vendor_name,
                    },
                }
                copied["responses"] = dict(operation["responses"])
                success = operation["responses"]["200"]["content"]["application/json"]["schema"]
                shape = (
                    {"type": "array", "items": record} if success.get("type") == "array" else record
                )
                copied["responses"]["200"] = {
                    "description": "Success",
                    "content": {"application/json": {"schema": shape}},
                }
                if "requestBody" in operation:
                    copied["requestBody"] = {
                        "required": True,
                        "content": {"application/json": {"schema": record}},
                    }
                new_item[method] = copied
            paths[f"{prefix}/{transformation.object_name}{path[len(vendor) :]}"] = new_item
    return document
