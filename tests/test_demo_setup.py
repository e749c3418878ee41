"""The demo tenant of ``run.sh --demo``: created once, re-keyed on every run."""

import json

import pytest
from django.core.management import CommandError, call_command

from conftest import SA_CONFIGURATION, Tenant
from elements.services import demo_tenant_issue
from instances.models import Instance
from tenants.models import Organization


@pytest.mark.django_db
def test_a_second_run_reuses_the_tenant_with_new_secrets(sim):
    first = demo_tenant_issue(element_key="mixpanel", configuration=SA_CONFIGURATION)
    second = demo_tenant_issue(element_key="mixpanel", configuration=SA_CONFIGURATION)
    assert (first.organization_id, first.instance_id) == (
        second.organization_id,
        second.instance_id,
    )
    assert Organization.objects.count() == 1 and Instance.objects.count() == 1
    assert first.user_secret != second.user_secret and first.token != second.token
    assert first.organization_secret != second.organization_secret

    org = Organization.objects.get()
    old = Tenant(org, first.organization_secret, org.users.get(), first.user_secret)
    new = Tenant(org, second.organization_secret, org.users.get(), second.user_secret)
    ping = "/elements/api-v2/hubs/general/ping"
    assert old.element_client(first.token).get(ping).status_code == 401
    assert new.element_client(second.token).get(ping).status_code == 200


@pytest.mark.django_db
def test_the_command_refuses_credentials_the_vendor_rejects(sim, capsys):
    sim.configure(service_account_secret="rotated")
    with pytest.raises(CommandError, match="could not be set up"):
        call_command("demo_setup", configuration=json.dumps(SA_CONFIGURATION))
    assert not Instance.objects.exists() and not Organization.objects.exists()
