"""Tenant users and organizations in the admin, with real admin requests by staff users holding
exactly the permissions under test: without the view permission of API users (or of
organizations) a staff user sees them by id only ("user #1", "organization #2") in columns,
read-only fields, filters and links; with it, by email or name, linked to their page."""

import pytest

from bulk.models import BulkJob
from conftest import make_instance, staff_client
from transformations.models import Transformation

pytestmark = pytest.mark.django_db

INSTANCES = "/admin/instances/instance/"
USERS = "/admin/tenants/tenantuser/"


@pytest.fixture
def instances(tenant, other_tenant):
    return make_instance(tenant)[0], make_instance(other_tenant, name="Beta")[0]


def assert_by_id_only(page: str, *tenants) -> None:
    for tenant in tenants:
        assert tenant.user.email not in page
        assert tenant.organization.name not in page
    assert "/admin/tenants/" not in page  # no link to a page the staff user may not see


def user_link(tenant) -> str:
    user = tenant.user
    return f'<a href="{USERS}{user.pk}/change/">{user.email} (#{user.pk})</a>'


@pytest.mark.parametrize("permission", ["view_instance", "change_instance"])
def test_instances_show_their_owners_by_id_only(permission, tenant, other_tenant, instances):
    client = staff_client(permission)
    _, beta = instances
    for url in (INSTANCES, f"{INSTANCES}{beta.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "Beta" in page
        assert f"user #{other_tenant.user.pk}" in page
        assert f"organization #{other_tenant.organization.pk}" in page
        assert_by_id_only(page, tenant, other_tenant)


def test_each_tenant_permission_names_its_own_model(tenant, other_tenant, instances):
    _, beta = instances
    change = f"{INSTANCES}{beta.pk}/change/"
    page = staff_client("view_instance", "view_organization").get(change).content.decode()
    assert f"organization #{other_tenant.organization.pk}" not in page
    assert f"Globex (#{other_tenant.organization.pk})" in page
    assert f"user #{other_tenant.user.pk}" in page and other_tenant.user.email not in page

    client = staff_client("view_instance", "view_tenantuser", "view_organization")
    for url in (INSTANCES, change):
        page = client.get(url).content.decode()
        assert user_link(other_tenant) in page
        assert f"user #{other_tenant.user.pk}" not in page


def test_bulk_jobs_show_their_user_by_id_only(tenant, instances):
    acme, _ = instances
    job = BulkJob.objects.create(
        instance=acme, user=tenant.user, element_key="mixpanel", object_name="users"
    )
    client = staff_client("view_bulkjob")
    assert client.get("/admin/bulk/bulkjob/").status_code == 200
    response = client.get(f"/admin/bulk/bulkjob/{job.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"user #{tenant.user.pk}" in page
    assert_by_id_only(page, tenant)

    page = staff_client("view_bulkjob", "view_tenantuser").get(
        f"/admin/bulk/bulkjob/{job.pk}/change/"
    )
    assert user_link(tenant) in page.content.decode()


def test_users_show_their_organization_by_id_only_in_the_column_and_the_filter(
    tenant, other_tenant
):
    client = staff_client("view_tenantuser")
    response = client.get(USERS)
    assert response.status_code == 200
    page = response.content.decode()
    assert tenant.user.email in page and other_tenant.user.email in page  # its own model
    for org in (tenant.organization, other_tenant.organization):
        assert org.name not in page
        assert f'?organization__id__exact={org.pk}">organization #{org.pk}</a>' in page  # filter
        assert page.count(f"organization #{org.pk}") == 2  # the filter's and the column's
    # The filter still filters.
    org = other_tenant.organization.pk
    page = client.get(f"{USERS}?organization__id__exact={org}").content.decode()
    assert other_tenant.user.email in page and tenant.user.email not in page

    page = client.get(f"{USERS}{other_tenant.user.pk}/change/").content.decode()
    assert f"organization #{org}" in page and "Globex" not in page

    page = staff_client("view_tenantuser", "view_organization").get(USERS).content.decode()
    assert f'?organization__id__exact={org}">Globex (#{org})</a>' in page


def test_a_refused_add_form_shows_the_chosen_organization_by_id_only(other_tenant):
    client = staff_client("add_tenantuser")
    org = other_tenant.organization.pk
    response = client.post(f"{USERS}add/", {"organization": org, "email": "not-an-email"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Enter a valid email address." in page
    assert f'<option value="{org}" selected>organization #{org}</option>' in page
    assert "Globex" not in page


def test_transformations_show_their_organization_by_id_only(tenant):
    Transformation.objects.create(
        organization=tenant.organization,
        element_key="mixpanel",
        object_name="contact",
        vendor_name="users",
    )
    page = staff_client("view_transformation").get("/admin/transformations/transformation/")
    assert page.status_code == 200
    assert f"organization #{tenant.organization.pk}" in page.content.decode()
    assert_by_id_only(page.content.decode(), tenant)
