"""What an element is made of. An element folder builds one ``Element`` from these parts, and
everything the platform shows or does for it (catalog, resources, OpenAPI docs, schema endpoints,
configuration and input validation, dispatch, bulk objects) is derived from that one object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from elements.framework.authentication import Authentication
from elements.framework.vendor import Vendor
from platform_core.validation import compiled_validator

if TYPE_CHECKING:  # bulk.py builds on Call: a type here only
    from elements.framework.bulk import BulkSource

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

    def json_schema(self) -> dict:
        """The JSON Schema of a value a caller may send for this field. Cloud Elements
        configurations are often all strings, so integers and booleans may come as text
        ("123", "true") and enum choices in any case; ``stored`` turns an accepted value into
        the stored one. ``x-error`` is the message when a value fits none of the forms."""
        if self.type == "string":
            return {"type": "string", "maxLength": self.max_length}
        if self.type == "integer":
            # 18 digits: below 2**63, what PostgreSQL's bigint and every vendor take.
            digits = {"type": "string", "pattern": r"^\s*[0-9]{1,18}\s*$"}
            return {"anyOf": [{"type": "integer"}, digits], "x-error": "must be an integer"}
        if self.type == "boolean":
            text = {"type": "string", "pattern": "^(?i:true|false)$"}
            return {"anyOf": [{"type": "boolean"}, text], "x-error": "must be a boolean"}
        choices = "|".join(re.escape(c) for c in self.choices)
        return {
            "type": "string",
            "pattern": f"^(?i:{choices})$",
            "x-error": f"must be one of {', '.join(self.choices)}",
        }

    def stored(self, value: Any) -> Any:
        """The stored form of a value that passed ``json_schema``."""
        if self.type == "integer":
            return int(value.strip()) if isinstance(value, str) else int(value)
        if self.type == "boolean":
            return value.lower() == "true" if isinstance(value, str) else value
        if self.type == "enum":
            return next(c for c in self.choices if c.upper() == value.upper())
        return value


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
    """Everything an operation's handler (or a bulk source) may use; built by
    ``dispatch.make_call`` and nowhere else."""

    element: Element
    instance_id: int
    configuration: dict
    inputs: dict
    # This instance's hosts, authenticated by the element's strategy, retried as the
    # operation's idempotency allows.
    vendor: Vendor
    request_id: str = ""
    operation: Operation | None = None  # None for a bulk job


_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per operation
class Operation:
    """One thing an element can do, reachable in resource style, operation style, or both.

    ``input_schema`` is a JSON Schema object; each property may say where it comes from with
    ``"x-in": "path" | "query" | "body"`` (default: query for GET/DELETE, body otherwise).
    ``array_body`` names the property a bare JSON array body is placed under.
    ``raw_inputs``, optional, is a fast path for large bodies: the inputs read straight from the
    raw JSON body when it is plainly valid (values may stay undecoded, e.g. ``msgspec.Raw``),
    or None to take the general path (parse, assemble, validate), which explains any error.
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
    raw_inputs: Callable[[bytes], dict | None] | None = None
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
    bulk: BulkSource | None = None  # set when the object can be bulk-downloaded
    # For transformations (framework/mapping.py): where the element takes a value it returns at
    # a path, and the name a CEQL ``where`` gives it. None: the path itself.
    write_path: Callable[[str], str] | None = None
    where_field: Callable[[str], str] | None = None


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per element
class Element:
    id: int
    key: str
    name: str
    description: str
    hub: str
    authentication: Authentication  # adds each vendor request's credentials
    configuration: tuple[ConfigField, ...]
    operations: tuple[Operation, ...]
    hosts: Callable[[dict], Mapping[str, str]]  # configuration -> {host alias: base URL}
    verify: Callable[[Call], Any]  # one cheap vendor call; raises VendorError when rejected
    image: str = ""
    objects: tuple[ElementObject, ...] = ()
    events_supported: bool = False
    docs_url: str = ""

    def __post_init__(self):
        object.__setattr__(self, "configuration", self.configuration + COMMON_CONFIG_FIELDS)
        self._check_operation_ids()

    def _check_operation_ids(self) -> None:
        ids = [op.id for op in self.operations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"Element {self.key}: duplicate operation ids")

    def add_operations(self, operations: tuple[Operation, ...]) -> None:
        """Operations every element has (``ping``, ``objects``…): the registry adds them once,
        when it finds the element (``registry.register``)."""
        object.__setattr__(self, "operations", self.operations + operations)
        self._check_operation_ids()

    @property
    def auth_type(self) -> str:
        """The catalog's ``authentication.type`` ("basic", "apiKey", "oauth2")."""
        return self.authentication.type

    @cached_property
    def configuration_schema(self) -> dict:
        """The JSON Schema of a configuration as a caller sends it (elements/framework/
        configuration.py validates with it); required fields are checked after a PATCH's
        merge."""
        return {
            "type": "object",
            "properties": {f.key: f.json_schema() for f in self.configuration},
            "additionalProperties": False,
        }

    @cached_property
    def configuration_validator(self):
        return compiled_validator(self.configuration_schema)

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
