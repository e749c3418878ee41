"""Profile updates (user profiles through ``/engage``, group profiles through ``/groups``):
Mixpanel's ingestion API, authenticated by the project token inside each update. Mixpanel
answers a refused update with 200 and ``status`` 0 (``verbose=1`` adds its words): a 400 here.
"""

from elements.framework.definition import Call
from elements.framework.vendor import VendorError
from platform_core.exceptions import ValidationFailed


def operations_of(inputs: dict, allowed: dict, *, what: str) -> dict:
    """The update operations in ``inputs`` (those ``allowed`` names); at least one, else 400.
    ``what`` names the profile ("profile", "group profile")."""
    operations = {k: inputs[k] for k in allowed if k in inputs}
    if not operations:
        raise ValidationFailed(
            f"Give at least one {what} operation.",
            errors=[{"field": "$set", "message": f"one of {', '.join(allowed)}"}],
        )
    return operations


def send_profile_updates(
    call: Call, path: str, updates: list[dict], *, what: str, idempotent: bool | None = None
) -> int:
    """Sends ``updates`` (each with its ``$token``) to ``path``; the vendor's status.
    ``what`` names the profile in the refusal ("profile", "group profile"); ``idempotent``, by
    default the operation's, as for ``VendorClient.request``."""
    response = call.vendor.request(
        "POST",
        "api",
        path,
        query={"verbose": 1},
        json_body=updates,
        authenticate=False,  # the project token in each update authenticates it
        idempotent=idempotent,
    )
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != 1:
        message = body.get("error") if isinstance(body, dict) else None
        raise VendorError(
            f"Mixpanel refused the {what} update.",
            status_code=400,
            provider_status=response.status,
            provider_message=str(message or response.text()[:500]),
        )
    return response.status
