"""What an element is made of. An element folder builds one ``Element`` from these parts, and
everything the platform shows or does for it (catalog, resources, OpenAPI docs, schema endpoints,
configuration and input validation, dispatch, bulk objects) is derived from that one object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from platform_core.validation import compiled_validator

# Configuration every element accepts (contract §6: bulk callbacks are signed with it).
SIGNATURE_KEY_FIELD = "event.notification.signature.key"

CONFIG_TYPES = ("string", "integer", "boolean", "enum")


@dataclass(frozen=True)
class ConfigField:
    """One key of an instance's configuration."""

    key: str
    name: str
    type: str = "string"
    required: bool = False
    secret: bool = False
    default: Any = None
    description: str = ""
    choices: tuple[str, ...] = ()
    max_length: int = 4096

    def __post_init__(self):
        if self.type not in CONFIG_TYPES:
            raise ValueError(f"ConfigField {self.key}: unknown type {self.type!r}")


COMMON_CONFIG_FIELDS = (
    ConfigField(
        key=SIGNATURE_KEY_FIELD,
        name="Callback signing key",
        secret=True,
        description="HMAC-SHA256 key that signs bulk job callbacks (Elements-Webhook-Signature).",
    ),
)


@dataclass(frozen=True)
class Result:
    """What an operation hands back: the body, extra response headers, the vendor's status."""

    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    vendor_status: int | None = None


@dataclass
class Call:
    """Everything an operation's handler may use; built by the dispatcher."""

    element: Element
    instance_id: int
    configuration: dict
    inputs: dict
    vendor: Any  # elements.framework.vendor.VendorClient bound to this instance's hosts
    request_id: str = ""


_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per operation
class Operation:
    """One thing an element can do, reachable in resource style, operation style, or both.

    ``input_schema`` is a JSON Schema object; each property may say where it comes from with
    ``"x-in": "path" | "query" | "body"`` (default: query for GET/DELETE, body otherwise).
    ``array_body`` names the property a bare JSON array body is placed under.
    """

    id: str
    method: str
    handler: Callable[[Call], Any]
    description: str
    vendor_method: str
    vendor_path: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    path: str | None = None  # resource style, e.g. "/users/{id}"
    name: str | None = None  # operation style, e.g. "query_profiles"
    object_name: str | None = None
    idempotent: bool = False
    array_body: str | None = None
    # Output keys that hold secrets meant for the caller alone (never logged, even traced).
    secret_output_keys: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.path and not self.name:
            raise ValueError(f"Operation {self.id} needs a resource path or an operation name")

    # Compiled once per operation (cached_property writes the instance dict directly, which a
    # frozen dataclass allows).
    @cached_property
    def input_validator(self):
        return compiled_validator(self.input_schema)

    @cached_property
    def output_validator(self):
        return compiled_validator(self.output_schema)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path or ""))

    def location_of(self, prop: str) -> str:
        spec = self.input_schema.get("properties", {}).get(prop, {})
        if "x-in" in spec:
            return spec["x-in"]
        return "query" if self.method in ("GET", "DELETE") else "body"

    def properties_in(self, location: str) -> Iterator[tuple[str, Mapping]]:
        for prop, spec in self.input_schema.get("properties", {}).items():
            if self.location_of(prop) == location:
                yield prop, spec


@dataclass(frozen=True)
class ObjectField:
    path: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class ElementObject:
    """A business object of the element (``GET /objects``, metadata, bulk)."""

    name: str
    description: str
    fields: tuple[ObjectField, ...] = ()
    bulk: Any = None  # a bulk source factory, when the object can be bulk-downloaded


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per element
class Element:
    id: int
    key: str
    name: str
    description: str
    hub: str
    auth_type: str
    configuration: tuple[ConfigField, ...]
    operations: tuple[Operation, ...]
    hosts: Callable[[dict], Mapping[str, str]]  # configuration -> {host alias: base URL}
    verify: Callable[[Call], Any]  # one cheap vendor call; raises VendorError when rejected
    image: str = ""
    objects: tuple[ElementObject, ...] = ()
    events_supported: bool = False
    docs_url: str = ""

    def __post_init__(self):
        from elements.framework.common import common_operations

        object.__setattr__(self, "configuration", self.configuration + COMMON_CONFIG_FIELDS)
        object.__setattr__(self, "operations", self.operations + common_operations())
        ids = [op.id for op in self.operations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"Element {self.key}: duplicate operation ids")

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(f.key for f in self.configuration if f.secret)

    def config_field(self, key: str) -> ConfigField | None:
        return next((f for f in self.configuration if f.key == key), None)

    def operation(self, op_id: str) -> Operation | None:
        return next((op for op in self.operations if op.id == op_id), None)

    def named_operation(self, name: str) -> Operation | None:
        return next((op for op in self.operations if op.name == name), None)

    @property
    def resource_operations(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.path)

    @property
    def bulk_objects(self) -> tuple[ElementObject, ...]:
        return tuple(o for o in self.objects if o.bulk is not None)
