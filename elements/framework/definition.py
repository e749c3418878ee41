"""What an element is made of. An element folder builds one ``Element`` from these parts, and
everything the platform shows or does for it (catalog, resources, OpenAPI docs, schema endpoints,
configuration and input validation, dispatch, bulk objects) is derived from that one object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from elements.framework.authentication import Authentication
from elements.framework.vendor import Vendor
from platform_core.validation import compiled_validator

if TYPE_CHECKING:  # bulk.py and polling.py build on Call: types here only
    from elements.framework.bulk import BulkSource
    from elements.framework.polling import Polling

# Configuration every element accepts (contract §6: bulk callbacks are signed with it).
SIGNATURE_KEY_FIELD = "event.notification.signature.key"

CONFIG_TYPES = ("string", "integer", "number", "boolean", "enum", "integer_map")

# A 64-bit signed integer as text (Mixpanel's data group ids are sent as strings).
_SIGNED_DIGITS = r"^\s*-?[0-9]{1,19}\s*$"


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
    minimum: float | None = None  # "number" fields only

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
        if self.type == "number":
            # A number given as text is checked against the minimum by ``below_minimum``.
            number = {"type": "number"}
            if self.minimum is not None:
                number["minimum"] = self.minimum
            return {
                "anyOf": [
                    number,
                    {"type": "string", "pattern": r"^\s*[0-9]{1,9}(\.[0-9]{1,6})?\s*$"},
                ],
                "x-error": "must be a number"
                + (f" of at least {self.minimum:g}" if self.minimum is not None else ""),
            }
        if self.type == "boolean":
            text = {"type": "string", "pattern": "^(?i:true|false)$"}
            return {"anyOf": [{"type": "boolean"}, text], "x-error": "must be a boolean"}
        if self.type == "integer_map":
            # A string is decoded first (``parsed``): Cloud Elements clients send it as JSON text.
            value = {
                "anyOf": [
                    {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                    {"type": "string", "pattern": _SIGNED_DIGITS},
                ],
                "x-error": "must be an integer",
            }
            return {
                "type": "object",
                "maxProperties": 100,
                "propertyNames": {"minLength": 1, "maxLength": 255},
                "additionalProperties": value,
                "x-error": "must be a JSON object of names to integers",
            }
        choices = "|".join(re.escape(c) for c in self.choices)
        return {
            "type": "string",
            "pattern": f"^(?i:{choices})$",
            "x-error": f"must be one of {', '.join(self.choices)}",
        }

    def parsed(self, value: Any) -> Any:
        """The value as the schema checks it: an ``integer_map`` given as JSON text decoded
        (text that is no JSON object is left for the schema to refuse)."""
        if self.type == "integer_map" and isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError:
                return value
            return decoded if isinstance(decoded, dict) else value
        return value

    def below_minimum(self, value: Any) -> bool:
        """Whether a stored "number" value is under the field's minimum."""
        return self.type == "number" and self.minimum is not None and value < self.minimum

    def stored(self, value: Any) -> Any:
        """The stored form of a value that passed ``json_schema``."""
        if self.type == "integer_map":
            return {k: int(v.strip()) if isinstance(v, str) else v for k, v in value.items()}
        if self.type == "integer":
            return int(value.strip()) if isinstance(value, str) else int(value)
        if self.type == "number":
            return float(value.strip()) if isinstance(value, str) else value
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
        description=(
            "HMAC-SHA256 key that signs bulk job callbacks and event notifications "
            "(Elements-Webhook-Signature)."
        ),
    ),
    # Events by polling (contract §10); checked further by the events app (events/checks.py).
    ConfigField(
        key="event.notification.enabled",
        name="Events enabled",
        type="boolean",
        description="Poll the vendor for changes and POST them to the callback URL "
        "(default false).",
    ),
    ConfigField(
        key="event.vendor.type",
        name="Event type",
        type="enum",
        choices=("polling",),
        description="How changes are found: polling (the only method).",
    ),
    ConfigField(
        key="event.notification.callback.url",
        name="Event callback URL",
        max_length=2000,
        description="Where notifications are POSTed; required when events are enabled.",
    ),
    ConfigField(
        key="event.poller.refresh_interval",
        name="Polling interval (minutes)",
        type="number",
        minimum=0.1,
        description="Minutes between two polls of each object; fractions allowed, at least 0.1 "
        "(default 15).",
    ),
    ConfigField(
        key="event.objects",
        name="Polled objects",
        max_length=1000,
        description="Comma-separated objects to poll (default: every pollable object).",
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


@dataclass(frozen=True)
class ConfigurationNeed:
    """Configuration an operation needs. ``missing(configuration, inputs)`` names the fields
    the instance should add (empty when it has what it needs); by default every one of
    ``fields`` that is unset. ``description`` says the rule in words (catalog, metadata);
    ``example(configuration, inputs)``, optional, the values the PATCH hint shows."""

    fields: tuple[str, ...]
    description: str
    missing: Callable[[Mapping, Mapping], tuple[str, ...]] | None = None
    # The values to show in the PATCH hint, when "<field name>" would not say enough.
    example: Callable[[Mapping, Mapping], dict] | None = None

    @classmethod
    def field(cls, key: str) -> ConfigurationNeed:
        return cls(fields=(key,), description=f"{key} in the configuration")

    def missing_fields(self, configuration: Mapping, inputs: Mapping) -> tuple[str, ...]:
        if self.missing is not None:
            return tuple(self.missing(configuration, inputs))
        return tuple(k for k in self.fields if configuration.get(k) in (None, "", {}))

    def representation(self) -> dict:
        return {"fields": list(self.fields), "description": self.description}


def _needs(declared: tuple[str | ConfigurationNeed, ...]) -> tuple[ConfigurationNeed, ...]:
    return tuple(
        need if isinstance(need, ConfigurationNeed) else ConfigurationNeed.field(need)
        for need in declared
    )


_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class TextBody:
    """A request body that is text rather than JSON (a CSV upload): the input property that
    receives it, whole, and the media types it may be sent as (any other is 415)."""

    property: str
    media_types: tuple[str, ...] = ("text/csv",)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per operation
class Operation:
    """One thing an element can do, reachable in resource style, operation style, or both.

    ``input_schema`` is a JSON Schema object; each property may say where it comes from with
    ``"x-in": "path" | "query" | "body"`` (default: query for GET/DELETE, body otherwise).
    ``array_body`` names the property a bare JSON array body is placed under; ``text_body``
    says the body is text (CSV), not JSON, and which property receives it.
    A path property has no path in operation style (``/mixpanel/{name}/{instanceId}``): there
    it comes from the query (GET, DELETE, or a text body) or the JSON body.
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
    text_body: TextBody | None = None
    raw_inputs: Callable[[bytes], dict | None] | None = None
    # Output keys that hold secrets meant for the caller alone (never logged, even traced).
    secret_output_keys: tuple[str, ...] = ()
    # Configuration the operation needs beyond the element's required fields: a key
    # ("project_token") or a ``ConfigurationNeed`` for a rule a key cannot say. Checked before
    # any vendor call (``dispatch.run_operation``); shown by the catalog and metadata.
    requires_configuration: tuple[str | ConfigurationNeed, ...] = ()
    # Its own authentication strategy when the vendor wants other credentials for it than for
    # the element's other calls (Mixpanel's privacy API: a GDPR OAuth token); else the element's.
    authentication: Authentication | None = None

    def __post_init__(self):
        if not self.path and not self.name:
            raise ValueError(f"Operation {self.id} needs a resource path or an operation name")
        object.__setattr__(self, "requires_configuration", _needs(self.requires_configuration))

    @property
    def configuration_needs(self) -> tuple[ConfigurationNeed, ...]:
        return self.requires_configuration  # type: ignore[return-value]  # normalised above

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

    def location_of(self, prop: str, *, operation_style: bool = False) -> str:
        spec = self.input_schema.get("properties", {}).get(prop, {})
        location = spec.get("x-in")
        if location is None or (location == "path" and operation_style):
            query_only = self.method in ("GET", "DELETE") or self.text_body is not None
            return "query" if query_only else "body"
        return location

    def properties_in(
        self, location: str, *, operation_style: bool = False
    ) -> Iterator[tuple[str, Mapping]]:
        for prop, spec in self.input_schema.get("properties", {}).items():
            if self.location_of(prop, operation_style=operation_style) == location:
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
    # Incremental sync (elements/framework/incremental.py), declared by every bulk object: the
    # field that identifies a record, and the one whose value only grows as records are
    # added or changed (``where <cursor_field> >= '<ISO-8601>'``), both as record paths.
    primary_key: str = ""
    cursor_field: str = ""
    # Other names a query may use for the cursor field (e.g. the bare property name).
    cursor_aliases: tuple[str, ...] = ()
    # "day" when the cursor is a date (the status shows 2026-11-30), else "second".
    cursor_granularity: str = "second"
    # For transformations (framework/mapping.py): where the element takes a value it returns at
    # a path, and the name a CEQL ``where`` gives it. None: the path itself.
    write_path: Callable[[str], str] | None = None
    where_field: Callable[[str], str] | None = None
    # Configuration a bulk job of this object needs, as ``Operation.requires_configuration``
    # says it (keys or ``ConfigurationNeed``s): checked when the job is submitted (a 400, as an
    # element call's), shown in /objects/{name}/metadata.
    bulk_requires_configuration: tuple[str | ConfigurationNeed, ...] = ()

    def __post_init__(self):
        object.__setattr__(
            self, "bulk_requires_configuration", _needs(self.bulk_requires_configuration)
        )

    @property
    def bulk_configuration_needs(self) -> tuple[ConfigurationNeed, ...]:
        return self.bulk_requires_configuration  # type: ignore[return-value]  # normalised


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
    polling: Polling | None = None  # events by polling (contract §10)
    docs_url: str = ""

    def __post_init__(self):
        object.__setattr__(self, "configuration", self.configuration + COMMON_CONFIG_FIELDS)
        self._check_operation_ids()

    def _check_operation_ids(self) -> None:
        ids = [op.id for op in self.operations]
        if len(ids) != len(set(ids)):
            raise ValueError(f"Element {self.key}: duplicate operation ids")
        names = [o.name for o in self.objects]
        if len(names) != len(set(names)):
            raise ValueError(f"Element {self.key}: duplicate object names")

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
