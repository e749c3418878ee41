"""JSON Schema validation with the contract's error list: ``[{"field", "message"}]``.

One validator per schema, compiled once; used for platform request bodies and for every
element operation's input.
"""

import json
from collections.abc import Mapping
from functools import lru_cache

from jsonschema import Draft202012Validator

from platform_core.exceptions import ValidationFailed

MAX_ERRORS = 20


def _freeze(schema: Mapping) -> str:
    return json.dumps(schema, sort_keys=True)


@lru_cache(maxsize=512)
def _validator_for(frozen: str) -> Draft202012Validator:
    schema = json.loads(frozen)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validator_for(schema: Mapping) -> Draft202012Validator:
    return _validator_for(_freeze(schema))


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
    return ".".join(p for p in path if p) or "body"


def _message(error) -> str:
    if error.validator == "additionalProperties":
        return "unknown field"
    message = error.message
    # Never echo huge or hostile values back: the validator's messages embed the instance.
    if len(message) > 300:
        message = message[:300] + "..."
    return message


def schema_errors(validator: Draft202012Validator, data) -> list[dict]:
    errors = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        errors.append({"field": field_name(error), "message": _message(error)})
        if len(errors) >= MAX_ERRORS:
            break
    return errors


def validate(schema: Mapping, data, *, message: str = "The request failed validation."):
    errors = schema_errors(validator_for(schema), data)
    if errors:
        raise ValidationFailed(message, errors=errors)
    return data
