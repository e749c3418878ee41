"""JSON Schema validation with the contract's error list: ``[{"field", "message"}]``.

Each schema is compiled once, twice over: fastjsonschema turns it into Python code that answers
"valid?" quickly (an import of 200,000 events is checked in milliseconds instead of seconds),
and jsonschema explains a failure field by field. Used for platform request bodies and for
every element operation's input and output.
"""

import json
import re
from collections.abc import Mapping
from functools import lru_cache

import fastjsonschema
import orjson
from jsonschema import Draft202012Validator

from platform_core.exceptions import ValidationFailed

MAX_ERRORS = 20
MAX_FIELD_LENGTH = 200
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class CompiledSchema:
    """A schema ready to check data: a fast yes/no, and an explainer for the no."""

    def __init__(self, schema: Mapping):
        Draft202012Validator.check_schema(schema)
        self.explainer = Draft202012Validator(schema)
        self._fast = fastjsonschema.compile(dict(schema))

    def passes(self, data) -> bool:
        try:
            self._fast(data)
        except fastjsonschema.JsonSchemaException:
            return False
        except RecursionError:
            return False  # too deep for generated code: let the explainer judge
        return True


def compiled_validator(schema: Mapping) -> CompiledSchema:
    return CompiledSchema(schema)


@lru_cache(maxsize=64)
def _validator_for(frozen: str) -> CompiledSchema:
    return compiled_validator(json.loads(frozen))


def validator_for(schema: Mapping) -> CompiledSchema:
    """A validator for a schema known only as a value (request bodies of platform views)."""
    return _validator_for(json.dumps(schema, sort_keys=True))


def field_name(error) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        # "'x' is a required property": the missing key is the field.
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path.append(missing)
    elif error.validator == "additionalProperties":
        extra = sorted(
            set(error.instance) - set(error.schema.get("properties", {}))
            if isinstance(error.instance, dict)
            else []
        )
        if extra:
            path.append(extra[0])
    return (".".join(p for p in path if p) or "body")[:MAX_FIELD_LENGTH]


def _plural(count, noun: str, nouns: str = "") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


# The rule each keyword states. The validator's own messages embed the offending value, which
# may be a credential the client sent or a megabyte of text: never echo it back.
_RULES = {
    "type": lambda v: "must be of type " + (" or ".join(v) if isinstance(v, list) else str(v)),
    "required": lambda v: "is required",
    "additionalProperties": lambda v: "unknown field",
    "minLength": lambda v: f"must be at least {_plural(v, 'character')}",
    "maxLength": lambda v: f"must be at most {_plural(v, 'character')}",
    "minItems": lambda v: f"must have at least {_plural(v, 'item')}",
    "maxItems": lambda v: f"must have at most {_plural(v, 'item')}",
    "minProperties": lambda v: f"must have at least {_plural(v, 'property', 'properties')}",
    "maxProperties": lambda v: f"must have at most {_plural(v, 'property', 'properties')}",
    "minimum": lambda v: f"must be at least {v}",
    "maximum": lambda v: f"must be at most {v}",
    "exclusiveMinimum": lambda v: f"must be greater than {v}",
    "exclusiveMaximum": lambda v: f"must be less than {v}",
    "enum": lambda v: "must be one of " + ", ".join(json.dumps(c) for c in v),
    "const": lambda v: f"must be {json.dumps(v)}",
    "pattern": lambda v: f"must match {v}",
    "uniqueItems": lambda v: "must not repeat items",
}


def _message(error) -> str:
    # A schema may state its own rule for a value that fits none of its forms ("must be an
    # integer" rather than the anyOf's mechanics).
    stated = error.schema.get("x-error") if isinstance(error.schema, dict) else None
    if isinstance(stated, str):
        return stated
    rule = _RULES.get(error.validator)
    message = rule(error.validator_value) if rule else f"does not satisfy {error.validator}"
    return message if len(message) <= 300 else message[:300] + "..."


def _text_problem(text: str, reject_nul: bool) -> str | None:
    if _LONE_SURROGATE.search(text):
        return "must be valid Unicode text (it contains a lone surrogate)"
    if reject_nul and "\x00" in text:
        return "must not contain NUL characters"
    return None


def _text_is_clean(data, reject_nul: bool) -> bool:
    """The common case, at C speed: the whole value encodes as UTF-8 (orjson refuses a lone
    surrogate) and, when asked, holds no NUL. Anything orjson will not encode (a key that is not
    a string, an integer past 64 bits, nesting past its limit) takes the slow, exact path."""
    try:
        encoded = orjson.dumps(data)
    except (orjson.JSONEncodeError, RecursionError, TypeError):
        return False
    return not (reject_nul and b"\\u0000" in encoded)


def text_errors(data, *, reject_nul: bool = False) -> list[dict]:
    """Strings JSON allows but nothing downstream can take: lone surrogates (not UTF-8, so not
    storable, loggable or renderable) and, when asked, NUL (PostgreSQL text refuses it).
    Iterative, so a deeply nested body cannot exhaust the stack here."""
    if _text_is_clean(data, reject_nul):
        return []
    errors: list[dict] = []
    stack = [("", data)]
    while stack and len(errors) < MAX_ERRORS:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                problem = _text_problem(str(key), reject_nul)
                if problem:
                    errors.append({"field": name[:MAX_FIELD_LENGTH], "message": "key " + problem})
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), item) for i, item in enumerate(value))
        elif isinstance(value, str):
            problem = _text_problem(value, reject_nul)
            if problem:
                errors.append({"field": path[:MAX_FIELD_LENGTH] or "body", "message": problem})
    return errors[:MAX_ERRORS]


def schema_errors(
    validator: CompiledSchema, data, *, reject_nul: bool = False, check_text: bool = True
) -> list[dict]:
    if validator.passes(data):
        return text_errors(data, reject_nul=reject_nul) if check_text else []
    errors = []
    explained = validator.explainer.iter_errors(data)
    for error in sorted(explained, key=lambda e: list(e.absolute_path)):
        errors.append({"field": field_name(error), "message": _message(error)})
        if len(errors) >= MAX_ERRORS:
            break
    if errors or not check_text:
        return errors
    return text_errors(data, reject_nul=reject_nul)


def validate(schema: Mapping, data, *, message: str = "The request failed validation."):
    errors = schema_errors(validator_for(schema), data, reject_nul=True)
    if errors:
        raise ValidationFailed(message, errors=errors)
    return data
