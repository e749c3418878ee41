"""Checking an instance configuration against its element's JSON Schema, and masking it."""

from collections.abc import Callable
from typing import Any

from elements.framework.definition import Element
from platform_core.exceptions import ValidationFailed
from platform_core.validation import schema_errors

MASK = "********"
MAX_KEYS = 100

# Checks of a whole configuration that apps above the framework add (``register_check``), e.g.
# the events app's (events/checks.py): each takes (element, merged configuration) and returns
# errors ``{"field": key, "message": ...}``.
CONFIGURATION_CHECKS: list[Callable[[Element, dict], list[dict]]] = []


def register_check(check: Callable[[Element, dict], list[dict]]) -> None:
    if check not in CONFIGURATION_CHECKS:
        CONFIGURATION_CHECKS.append(check)


def clean_configuration(element: Element, raw: Any, *, current: dict | None = None) -> dict:
    """Validate ``raw`` against the element's configuration schema (``Element.
    configuration_schema``, checked by the platform's validator); returns the configuration to
    store, each value in its stored form (``ConfigField.stored``).

    With ``current`` (a PATCH), ``raw`` is merged onto it, ``null`` removes a key and the mask
    ``"********"`` keeps a secret's stored value, so a configuration read back from the API can be
    sent again unchanged.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed(
            "configuration must be an object.",
            errors=[{"field": "configuration", "message": "must be an object"}],
        )
    if len(raw) > MAX_KEYS:
        raise ValidationFailed(
            "The configuration is not valid for this element.",
            errors=[{"field": "configuration", "message": f"at most {MAX_KEYS} keys"}],
        )
    errors: list[dict] = []
    given = {}
    removed = set()
    for key, value in raw.items():
        field = element.config_field(key)
        if value is None:
            removed.add(key)
        elif field is not None and field.secret and value == MASK:
            if current is None or key not in current:
                errors.append({"field": _name(key), "message": "the mask is not a value"})
        else:
            given[key] = field.parsed(value) if field is not None else value
    errors += [
        {"field": _name(error["field"]), "message": error["message"]}
        for error in schema_errors(element.configuration_validator, given, reject_nul=True)
    ]
    merged = {k: v for k, v in (current or {}).items() if k not in removed}
    if not errors:
        merged.update({k: element.config_field(k).stored(v) for k, v in given.items()})
        for key in given:
            field = element.config_field(key)
            if field.below_minimum(merged[key]):
                errors.append(
                    {"field": _name(key), "message": f"must be at least {field.minimum:g}"}
                )
    for field in element.configuration:
        if field.key not in merged and field.default is not None:
            merged[field.key] = field.default
        if field.required and merged.get(field.key, given.get(field.key)) in (None, ""):
            errors.append({"field": _name(field.key), "message": "is required"})
    if not errors:
        for check in CONFIGURATION_CHECKS:
            errors += [
                {"field": _name(e["field"]), "message": e["message"]}
                for e in check(element, merged)
            ]
    if errors:
        raise ValidationFailed("The configuration is not valid for this element.", errors=errors)
    return merged


def _name(key: Any) -> str:
    """An error's field, named from the request body's top (``configuration.region``)."""
    return "configuration" if key == "body" else f"configuration.{str(key)[:100]}"


def masked_configuration(element: Element, configuration: dict) -> dict:
    secret = element.secret_keys
    return {k: (MASK if k in secret else v) for k, v in configuration.items()}


# Shorter values are left alone: masking "1" or "ab" would garble any text it touches.
MIN_SECRET_LENGTH = 4


def secret_values(element: Element, configuration: dict) -> list[str]:
    """What nobody may be shown: each secret configuration value and the authentication headers
    made from them (a vendor's error may echo the request's ``Authorization``), longest first."""
    values = {str(configuration[k]) for k in element.secret_keys if configuration.get(k)}
    try:
        headers = element.authentication.headers(configuration)
    except Exception:  # noqa: BLE001 (a configuration its strategy cannot use: nothing to add)
        headers = {}
    for header in headers.values():
        values.add(header)
        values.add(header.partition(" ")[2])  # "Basic <credentials>": the credentials alone
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def mask_secrets(value: Any, secrets: list[str]) -> Any:
    """``value`` (a text, or JSON made of texts) with each of ``secrets`` replaced by the mask."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: mask_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v, secrets) for v in value]
    return value


def redact(element: Element, value: Any, configuration: dict) -> Any:
    """``value`` with every secret of the configuration masked (traced bodies, vendor errors)."""
    return mask_secrets(value, secret_values(element, configuration))
