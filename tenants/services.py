"""Writes for organizations and users. Each returns the plain secret once; only its hash is kept."""

from dataclasses import dataclass

from django.db import transaction

from tenants.models import Organization, TenantUser
from tenants.secrets import hash_secret, new_secret


@dataclass(frozen=True)
class Issued:
    """A created or re-keyed identity together with the secret shown to its owner once."""

    obj: object
    secret: str


@transaction.atomic
def organization_create(*, name: str, email: str) -> tuple[Issued, Issued]:
    """Create an organization with its first user; returns both with their secrets."""
    org_secret = new_secret()
    organization = Organization.objects.create(
        name=name, email=email, secret_hash=hash_secret(org_secret)
    )
    user = user_create(organization=organization, email=email)
    return Issued(organization, org_secret), user


def user_create(*, organization: Organization, email: str) -> Issued:
    secret = new_secret()
    user = TenantUser.objects.create(
        organization=organization, email=email, secret_hash=hash_secret(secret)
    )
    return Issued(user, secret)


def user_rotate_secret(*, user: TenantUser) -> str:
    secret = new_secret()
    user.secret_hash = hash_secret(secret)
    user.save(update_fields=["secret_hash"])
    return secret


def organization_rotate_secret(*, organization: Organization) -> str:
    secret = new_secret()
    organization.secret_hash = hash_secret(secret)
    organization.save(update_fields=["secret_hash"])
    return secret
