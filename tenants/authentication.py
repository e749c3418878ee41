"""Platform calls' authentication: ``User <secret>, Organization <secret>`` (contract §1)."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from platform_core.authentication import credentials_of
from tenants.models import TenantUser
from tenants.secrets import hash_secret, secret_matches


class OrganizationUserAuthentication(BaseAuthentication):
    """Platform calls: ``User`` + ``Organization``. Any ``Element`` part is ignored here."""

    def authenticate(self, request):
        creds = credentials_of(request)
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
