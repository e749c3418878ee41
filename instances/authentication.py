"""Element calls' authentication: ``User <secret>, Element <token>`` (contract §1); the token
names an instance."""

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from instances.models import Instance
from instances.selectors import instance_by_token
from platform_core.authentication import credentials_of
from tenants.secrets import secret_matches


@dataclass(frozen=True)
class ElementAuth:
    """``request.auth`` of an element call: the instance the token named."""

    instance: Instance


class ElementAuthentication(BaseAuthentication):
    """Element calls: ``User`` + ``Element``; the token must belong to that user's instance.

    One indexed query finds the instance by token hash together with its user and organization.
    """

    def authenticate(self, request):
        creds = credentials_of(request)
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
    ``platform_core.exceptions.exception_handler`` renders (401)."""
    found = ElementAuthentication().authenticate(request)
    if found is None:
        raise NotAuthenticated()
    return found[1]
