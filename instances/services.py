"""Writes for instances: create, update, delete, enable/disable, token rotation, key rotation.

Credentials are checked against the vendor before anything is stored, so a rejected
configuration leaves nothing behind (contract §3).
"""

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils.html import strip_tags

from elements.framework.configuration import clean_configuration, redact
from elements.framework.definition import Element
from elements.framework.dispatch import make_call
from elements.framework.registry import element_by_key
from elements.framework.vendor import VendorError
from instances.crypto import decrypt_json, decrypt_text, encrypt_json, encrypt_text, reencrypt
from instances.models import Instance
from platform_core.exceptions import ValidationFailed
from tenants.models import TenantUser
from tenants.secrets import hash_secret

TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def clean_name(name: str) -> str:
    """Names are plain text: markup is stripped, never stored for rendering."""
    cleaned = " ".join(strip_tags(name).split())
    if not cleaned:
        raise ValidationFailed(
            "name must contain text.", errors=[{"field": "name", "message": "must contain text"}]
        )
    return cleaned


def configuration_of(instance: Instance) -> dict:
    return decrypt_json(instance.encrypted_configuration)


def token_of(instance: Instance) -> str:
    return decrypt_text(instance.encrypted_token)


def verify_credentials(*, element: Element, configuration: dict, instance_id: int = 0) -> None:
    """One cheap vendor call; a vendor refusal is a 400 that carries the vendor's words."""
    # The ping operation's call: the same deadline, bulkhead, breaker and retries.
    call = make_call(
        element,
        instance_id=instance_id,
        configuration=configuration,
        operation=element.operation("ping"),
    )
    try:
        element.verify(call)
    except VendorError as exc:
        if (
            exc.provider_status is not None
            and 400 <= exc.provider_status < 500
            and (exc.provider_status != 429)
        ):
            raise ValidationFailed(
                f"{element.name} rejected the credentials.",
                # The vendor's words, without the credentials it may have echoed.
                provider_message=redact(element, exc.provider_message, configuration),
                provider_status=exc.provider_status,
                errors=[{"field": "configuration", "message": "rejected by the vendor"}],
            ) from None
        raise


@dataclass(frozen=True)
class Created:
    instance: Instance
    token: str


def instance_create(
    *,
    user: TenantUser,
    element: Element,
    name: str,
    configuration: dict,
    tags: list[str],
    trace_logging_enabled: bool = False,
    validate: bool = True,
) -> Created:
    name = clean_name(name)
    clean = clean_configuration(element, configuration)
    if validate:
        verify_credentials(element=element, configuration=clean)
    token = new_token()
    instance = Instance.objects.create(
        user=user,
        element_key=element.key,
        name=name,
        tags=list(dict.fromkeys(tags)),
        encrypted_configuration=encrypt_json(clean),
        token_hash=hash_secret(token),
        encrypted_token=encrypt_text(token),
        trace_logging_enabled=trace_logging_enabled,
        valid=True,
    )
    return Created(instance, token)


def instance_update(
    *,
    instance: Instance,
    name: str | None = None,
    configuration: dict | None = None,
    tags: list[str] | None = None,
    trace_logging_enabled: bool | None = None,
    disabled: bool | None = None,
    replace_configuration: bool = False,
    validate: bool = True,
) -> Instance:
    """PATCH (``replace_configuration=False``: keys merged) or PUT (configuration replaced)."""
    element = element_by_key(instance.element_key)
    fields = []
    if name is not None:
        instance.name = clean_name(name)
        fields.append("name")
    if tags is not None:
        instance.tags = list(dict.fromkeys(tags))
        fields.append("tags")
    if trace_logging_enabled is not None:
        instance.trace_logging_enabled = trace_logging_enabled
        fields.append("trace_logging_enabled")
    if disabled is not None:
        instance.disabled = disabled
        fields.append("disabled")
    if configuration is not None:
        current = configuration_of(instance)
        # PUT: a fresh configuration, but a masked secret may still stand for the stored one.
        base = (
            current
            if not replace_configuration
            else {k: v for k, v in current.items() if configuration.get(k) == "********"}
        )
        clean = clean_configuration(element, configuration, current=base)
        if validate:
            verify_credentials(element=element, configuration=clean, instance_id=instance.pk)
        instance.encrypted_configuration = encrypt_json(clean)
        instance.valid = True
        fields += ["encrypted_configuration", "valid"]
    if fields:
        instance.save(update_fields=fields + ["updated_at"])
    return instance


def instance_delete(*, instance: Instance) -> None:
    """The row goes, and with it the token hash and the encrypted credentials."""
    instance.delete()


def instance_set_enabled(*, instance: Instance, enabled: bool) -> Instance:
    instance.disabled = not enabled
    instance.save(update_fields=["disabled", "updated_at"])
    return instance


def instance_rotate_token(*, instance: Instance) -> str:
    """A new token; the old one stops working with this write."""
    token = new_token()
    instance.token_hash = hash_secret(token)
    instance.encrypted_token = encrypt_text(token)
    instance.save(update_fields=["token_hash", "encrypted_token", "updated_at"])
    return token


def instance_verify(*, instance: Instance) -> bool:
    """Re-check the stored credentials now; records the outcome in ``valid``."""
    element = element_by_key(instance.element_key)
    try:
        verify_credentials(
            element=element, configuration=configuration_of(instance), instance_id=instance.pk
        )
        valid = True
    except ValidationFailed:
        valid = False
    instance.valid = valid
    instance.save(update_fields=["valid", "updated_at"])
    return valid


def rotate_credentials_key() -> int:
    """Re-encrypt every stored secret with the first key of CREDENTIALS_KEYS."""
    count = 0
    with transaction.atomic():
        for instance in Instance.objects.select_for_update().order_by("pk"):
            instance.encrypted_configuration = reencrypt(instance.encrypted_configuration)
            instance.encrypted_token = reencrypt(instance.encrypted_token)
            instance.save(update_fields=["encrypted_configuration", "encrypted_token"])
            count += 1
    return count
