"""The ``Authorization`` header of contract §1, as DRF authentication classes.

``User <secret>, Organization <secret>[, Element <token>]``: comma-separated ``Scheme value``
pairs in any order, schemes case-insensitive. Platform calls need User + Organization; element
calls need User + Element (Organization optional, and then it must match).
"""

import re
from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from tenants.models import TenantUser
from tenants.secrets import hash_secret, secret_matches

SCHEMES = ("user", "organization", "element")
_WHITESPACE = re.compile(r"\s")
MAX_HEADER_LENGTH = 4096


def parse_authorization(header: str) -> dict[str, str]:
    """``"User a, Organization b"`` -> ``{"user": "a", "organization": "b"}``.

    Raises AuthenticationFailed (401) on anything else."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        raise AuthenticationFailed("Authorization header missing or malformed.")
    credentials: dict[str, str] = {}
    for part in header.split(","):
        pieces = part.strip().split(None, 1)
        if len(pieces) != 2:
            raise AuthenticationFailed("Authorization header malformed: expected 'Scheme value'.")
        scheme, value = pieces[0].lower(), pieces[1].strip()
        if scheme not in SCHEMES or not value or _WHITESPACE.search(value):
            raise AuthenticationFailed("Authorization header malformed.")
        if scheme in credentials:
            raise AuthenticationFailed(f"Authorization header repeats the {pieces[0]} scheme.")
        credentials[scheme] = value
    return credentials


@dataclass(frozen=True)
class ElementAuth:
    """``request.auth`` of an element call: the instance the token named."""

    instance: object


def _credentials(request) -> dict[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    return parse_authorization(header)


class OrganizationUserAuthentication(BaseAuthentication):
    """Platform calls: ``User`` + ``Organization``. Any ``Element`` part is ignored here."""

    def authenticate(self, request):
        creds = _credentials(request)
        if creds is None:
            return None
        if "user" not in creds or "organization" not in creds:
            raise AuthenticationFailed("This call needs 'User <secret>, Organization <secret>'.")
        found = list(
            TenantUser.objects.select_related("organization")
            .filter(secret_hash=hash_secret(creds["user"]))
            .order_by()[:1]
        )
        user = found[0] if found else None
        if user is None or not secret_matches(creds["organization"], user.organization.secret_hash):
            raise AuthenticationFailed("Invalid User or Organization secret.")
        return user, None

    def authenticate_header(self, request):
        return "User"


class ElementAuthentication(BaseAuthentication):
    """Element calls: ``User`` + ``Element``; the token must belong to that user's instance.

    One indexed query finds the instance by token hash together with its user and organization.
    """

    def authenticate(self, request):
        from instances.selectors import instance_by_token

        creds = _credentials(request)
        if creds is None:
            return None
        if "user" not in creds or "element" not in creds:
            raise AuthenticationFailed("This call needs 'User <secret>, Element <token>'.")
        instance = instance_by_token(creds["element"])
        if instance is None or not secret_matches(creds["user"], instance.user.secret_hash):
            raise AuthenticationFailed("Invalid User secret or Element token.")
        organization_secret = creds.get("organization")
        if organization_secret is not None and not secret_matches(
            organization_secret, instance.user.organization.secret_hash
        ):
            raise AuthenticationFailed("Invalid Organization secret.")
        return instance.user, ElementAuth(instance)

    def authenticate_header(self, request):
        return "User"


def authenticate_element_call(request) -> ElementAuth:
    """For the plain Django element-call views (``elements/api.py``): what a DRF view with
    ``ElementAuthentication`` and ``IsAuthenticated`` decides, as exceptions
    ``exceptions.exception_handler`` renders (401)."""
    found = ElementAuthentication().authenticate(request)
    if found is None:
        raise NotAuthenticated()
    return found[1]
