from dataclasses import dataclass

from django.db import transaction

from elements.framework.registry import all_elements, element_by_key
from instances.models import Instance
from instances.services import instance_create, instance_rotate_token, instance_update
from tenants.models import Organization
from tenants.services import (
    organization_create,
    organization_rotate_secret,
    user_create,
    user_rotate_secret,
)


def sync_element_catalog(**kwargs):
    """Rewrite the ElementRecord mirror from the definitions (post_migrate)."""
    from elements.models import ElementRecord

    keys = []
    for element in all_elements():
        keys.append(element.key)
        ElementRecord.objects.update_or_create(
            key=element.key,
            defaults={
                "element_id": element.id,
                "name": element.name,
                "hub": element.hub,
                "auth_type": element.auth_type,
                "operation_count": len(element.operations),
                "description": element.description,
            },
        )
    ElementRecord.objects.exclude(key__in=keys).delete()


DEMO_ORGANIZATION_NAME = "Demo (scripts/run.sh --demo)"
DEMO_EMAIL = "demo@example.com"
DEMO_INSTANCE_NAME = "Demo Mixpanel (simulator)"


@dataclass(frozen=True)
class DemoTenant:
    organization_id: int
    organization_secret: str
    user_secret: str
    instance_id: int
    token: str


@transaction.atomic
def demo_tenant_issue(*, element_key: str, configuration: dict) -> DemoTenant:
    """The demo organization, its user and one instance with ``configuration``: created the first
    time, reused afterwards with every secret and the token issued anew (only hashes are stored,
    so the old ones cannot be shown again; they stop working here). The credentials are verified
    with the vendor, as an instance create through the API does."""
    element = element_by_key(element_key)
    organization = Organization.objects.filter(name=DEMO_ORGANIZATION_NAME).first()
    if organization is None:
        org, user = organization_create(name=DEMO_ORGANIZATION_NAME, email=DEMO_EMAIL)
        organization, organization_secret = org.obj, org.secret
        user, user_secret = user.obj, user.secret
    else:
        organization_secret = organization_rotate_secret(organization=organization)
        user = organization.users.first()
        if user is None:
            issued = user_create(organization=organization, email=DEMO_EMAIL)
            user, user_secret = issued.obj, issued.secret
        else:
            user_secret = user_rotate_secret(user=user)
    instance = Instance.objects.filter(
        user=user, element_key=element.key, name=DEMO_INSTANCE_NAME
    ).first()
    if instance is None:
        created = instance_create(
            user=user,
            element=element,
            name=DEMO_INSTANCE_NAME,
            configuration=configuration,
            tags=["demo"],
        )
        instance, token = created.instance, created.token
    else:
        instance_update(
            instance=instance,
            configuration=configuration,
            replace_configuration=True,
            disabled=False,
        )
        token = instance_rotate_token(instance=instance)
    return DemoTenant(organization.pk, organization_secret, user_secret, instance.pk, token)
