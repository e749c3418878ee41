"""Checking an instance configuration against its element's fields, and masking it."""

from typing import Any

from elements.framework.definition import ConfigField, Element
from platform_core.exceptions import ValidationFailed

MASK = "********"
MAX_KEYS = 100


def _coerce(field: ConfigField, value: Any) -> tuple[Any, str | None]:
    """The stored form of ``value``, or an error message."""
    if field.type == "string":
        if not isinstance(value, str):
            return None, "must be a string"
        if len(value) > field.max_length:
            return None, f"must be at most {field.max_length} characters"
        if "\x00" in value:
            return None, "must not contain NUL characters"
        return value, None
    if field.type == "integer":
        if isinstance(value, bool):
            return None, "must be an integer"
        if isinstance(value, int):
            return value, None
        # Cloud Elements configurations are often all strings: accept "123".
        # isdecimal+isascii: "²".isdigit() is true, but int("²") fails.
        text = value.strip() if isinstance(value, str) else ""
        if text.isascii() and text.isdecimal() and len(text) < 19:
            return int(text), None
        return None, "must be an integer"
    if field.type == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return None, "must be a boolean"
    # enum
    if isinstance(value, str):
        for choice in field.choices:
            if value.upper() == choice.upper():
                return choice, None
    return None, f"must be one of {', '.join(field.choices)}"


def clean_configuration(element: Element, raw: Any, *, current: dict | None = None) -> dict:
    """Validate ``raw`` against the element's fields; returns the configuration to store.

    With ``current`` (a PATCH), ``raw`` is merged onto it, ``null`` removes a key and the mask
    ``"********"`` keeps a secret's stored value, so a configuration read back from the API can be
    sent again unchanged.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "configuration must be an object.",
            errors=[{"field": "configuration", "message": "must be an object"}],
        )
    errors: list[dict] = []
    if len(raw) > MAX_KEYS:
        errors.append({"field": "configuration", "message": f"at most {MAX_KEYS} keys"})
    merged = dict(current or {})
    for key, value in raw.items():
        field = element.config_field(key)
        name = f"configuration.{str(key)[:100]}"
        if field is None:
            errors.append({"field": name, "message": "unknown configuration key"})
            continue
        if value is None:
            merged.pop(key, None)
            continue
        if field.secret and value == MASK:
            if current is None or key not in current:
                errors.append({"field": name, "message": "the mask is not a value"})
            continue
        clean, problem = _coerce(field, value)
        if problem:
            errors.append({"field": name, "message": problem})
        else:
            merged[key] = clean
    for field in element.configuration:
        if field.key not in merged and field.default is not None:
            merged[field.key] = field.default
        if field.required and merged.get(field.key) in (None, ""):
            errors.append({"field": f"configuration.{field.key}", "message": "is required"})
    if errors:
        raise ValidationFailed("The configuration is not valid for this element.", errors=errors)
    return merged


def masked_configuration(element: Element, configuration: dict) -> dict:
    secret = element.secret_keys
    return {k: (MASK if k in secret else v) for k, v in configuration.items()}


def redact(element: Element, value: Any, configuration: dict) -> Any:
    """``value`` with every secret configuration value replaced by the mask (trace logging)."""
    secrets = [str(configuration[k]) for k in element.secret_keys if configuration.get(k)]
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        return {k: redact(element, v, configuration) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(element, v, configuration) for v in value]
    return value
