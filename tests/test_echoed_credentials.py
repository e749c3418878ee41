"""A vendor whose error echoes the credentials it was sent: the platform passes on its words
with every secret of the instance masked, in an element call's providerMessage, in the 400 of
an instance whose credentials were refused, and in a bulk job's statusMessage (which the admin
shows too)."""

import base64

import pytest

from bulk import runner
from bulk.models import BulkJob
from conftest import SA_CONFIGURATION, SIM_SA_SECRET, SIM_SA_USERNAME
from elements.framework.configuration import MASK, secret_values
from elements.framework.registry import element_by_key

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

HUB = "/elements/api-v2/hubs/general"
BASIC = base64.b64encode(f"{SIM_SA_USERNAME}:{SIM_SA_SECRET}".encode()).decode()
ECHO = f"bad request from {SIM_SA_USERNAME} with {SIM_SA_SECRET}, header Basic {BASIC}"
SECRETS = (SIM_SA_SECRET, SIM_SA_USERNAME, BASIC)


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


def echo_fault(sim, **where):
    sim.faults(status={"status": 400, "body": {"error": ECHO}}, **where)


def assert_masked(text: str) -> None:
    assert "bad request from" in text and MASK in text
    for secret in SECRETS:
        assert secret not in text


def test_the_secret_forms_are_the_values_and_the_header(sim):
    values = secret_values(element_by_key("mixpanel"), dict(SA_CONFIGURATION))
    assert {SIM_SA_SECRET, SIM_SA_USERNAME, BASIC, f"Basic {BASIC}"} <= set(values)
    assert values == sorted(values, key=len, reverse=True)  # a secret inside another goes whole


def test_an_element_calls_provider_message(element, sim):
    echo_fault(sim, path_prefix="/api/app/organizations")
    response = element.get(f"{HUB}/service-accounts")
    assert response.status_code == 400, response.content[:300]
    assert_masked(response.json()["providerMessage"])


def test_a_refused_instance(tenant, sim):
    echo_fault(sim)
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {"element": {"key": "mixpanel"}, "name": "x", "configuration": SA_CONFIGURATION},
        format="json",
    )
    assert response.status_code == 400, response.content[:300]
    assert_masked(response.json()["providerMessage"])


def test_a_bulk_jobs_status_message(element, sim, bulk_in_test_thread):
    echo_fault(sim, path_prefix="/api/2.0/export")
    submitted = element.post("/elements/api-v2/bulk/query?q=select%20*%20from%20activities")
    assert submitted.status_code == 200, submitted.content[:300]
    job_id = submitted.json()["id"]
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "ERROR"
    job = BulkJob.objects.get(pk=job_id)
    assert job.status == BulkJob.Status.ERROR
    assert_masked(job.status_message)
    status = element.get(f"/elements/api-v2/bulk/{job.pk}/status").json()
    assert_masked(status["statusMessage"])
