"""The admin lists and shows definitions and transformations, read-only; an operator may delete
one."""

import pytest

from conftest import make_instance
from transformations.models import ObjectDefinition, Transformation

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transformations"


@pytest.fixture
def rows(tenant):
    instance = make_instance(tenant)[0]
    definition = ObjectDefinition.objects.create(
        organization=tenant.organization, name="customer", fields=[{"path": "id", "type": "string"}]
    )
    transformation = Transformation.objects.create(
        organization=tenant.organization,
        instance=instance,
        element_key="mixpanel",
        object_name="customer",
        vendor_name="users",
        fields=[{"path": "id", "vendorPath": "id"}],
    )
    return definition, transformation


def test_lists_and_pages_render_read_only(admin_client, rows):
    definition, transformation = rows
    listed = admin_client.get(f"{ADMIN}/objectdefinition/").content.decode()
    assert "customer" in listed and "organization" in listed
    listed = admin_client.get(f"{ADMIN}/transformation/?q=users").content.decode()
    assert "customer" in listed and "instance" in listed
    page = admin_client.get(f"{ADMIN}/transformation/{transformation.pk}/change/")
    assert page.status_code == 200
    assert 'name="vendor_name"' not in page.content.decode()  # nothing to edit
    assert admin_client.get(f"{ADMIN}/objectdefinition/add/").status_code == 403
    # A lookup through the instance's secret columns is refused.
    refused = admin_client.get(f"{ADMIN}/transformation/?instance__token_hash=x")
    assert refused.status_code == 400


def test_an_operator_may_delete_one(admin_client, rows):
    definition, _ = rows
    response = admin_client.post(
        f"{ADMIN}/objectdefinition/{definition.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not ObjectDefinition.objects.filter(pk=definition.pk).exists()
