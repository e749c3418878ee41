"""Shared fixtures: tenants, API clients, the Mixpanel simulator, and the services check.

Integration tests talk real HTTP to the simulator (a subprocess on loopback) and use the real
database named by DATABASE_URL (PostgreSQL in CI). When CI is set, a missing service fails the
run instead of skipping it.
"""

import json
import os
from contextlib import contextmanager

import pytest
from rest_framework.test import APIClient

from elements.framework.testing import element_simulator
from simulators.mixpanel import state
from simulators.mixpanel.testing import (
    SA_CONFIGURATION,  # noqa: F401 (tests import it from here)
    SimulatorProcess,
)
from tenants.services import organization_create, user_create

IN_CI = bool(os.environ.get("CI"))


def pytest_sessionstart(session):
    if IN_CI and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.exit("CI is set but DATABASE_URL does not point at PostgreSQL.", returncode=3)


@pytest.fixture(autouse=True)
def fresh_vendor_host_guards():
    """Each test starts with closed breakers and empty bulkheads: they are per process, and one
    test's vendor failures must not open a breaker on the next test's calls."""
    from elements.framework.isolation import host_guard

    host_guard.made.clear()


# The Mixpanel simulator, running for the whole session; every vendor call goes to it.
simulator = element_simulator("mixpanel", SimulatorProcess)


@pytest.fixture
def sim(simulator):
    """The simulator, reset to its seeded state for this test. (A module that uses the session's
    ``simulator`` directly resets it itself: a fault switch of an earlier test may be on.)"""
    simulator.reset()
    return simulator


class Tenant:
    """An organization with one user, and the headers that user sends."""

    def __init__(self, org, org_secret, user, user_secret):
        self.organization = org
        self.organization_secret = org_secret
        self.user = user
        self.user_secret = user_secret

    @property
    def platform_auth(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"

    def element_auth(self, token: str) -> str:
        return f"User {self.user_secret}, Element {token}"

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=self.platform_auth)
        return client

    def element_client(self, token: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=self.element_auth(token))
        return client


def staff_client(*codenames: str):
    """A Django test client logged in to the admin as a new staff user with just these
    permissions (``client.user`` is that user)."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    user = User.objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw-123456789", is_staff=True
    )
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def make_tenant(name="Acme", email="owner@acme.test") -> Tenant:
    org, user = organization_create(name=name, email=email)
    return Tenant(org.obj, org.secret, user.obj, user.secret)


def add_user(tenant: Tenant, email="second@acme.test") -> Tenant:
    issued = user_create(organization=tenant.organization, email=email)
    return Tenant(tenant.organization, tenant.organization_secret, issued.obj, issued.secret)


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant()


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant(name="Globex", email="owner@globex.test")


# The simulator's seeded credentials (simulators/mixpanel/README.md).
SIM_SA_USERNAME = state.DEFAULT_SA_USERNAME
SIM_SA_SECRET = state.DEFAULT_SA_SECRET
SIM_API_SECRET = state.DEFAULT_API_SECRET
SIM_PROJECT_TOKEN = state.DEFAULT_PROJECT_TOKEN
SIM_ORG_ID = state.DEFAULT_ORGANIZATION_ID
SIM_PROJECT_ID = state.DEFAULT_PROJECT_ID


def make_instance(tenant: Tenant, name="Main project", configuration=None, tags=()):
    """An instance created through the service, its credentials not verified: (model, token)."""
    from elements.framework.registry import element_by_key
    from instances.services import instance_create

    created = instance_create(
        user=tenant.user,
        element=element_by_key("mixpanel"),
        name=name,
        configuration=dict(configuration or SA_CONFIGURATION),
        tags=list(tags),
        validate=False,
    )
    return created.instance, created.token


def api_instance(tenant: Tenant, configuration=None, *, name="Main", traced: bool = False) -> dict:
    """A Mixpanel instance created through the API (service-account credentials unless
    ``configuration`` says otherwise): its representation, with its token."""
    response = tenant.client().post(
        "/elements/api-v2/instances",
        {
            "element": {"key": "mixpanel"},
            "name": name,
            "configuration": SA_CONFIGURATION if configuration is None else configuration,
            "traceLoggingEnabled": traced,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def sa_instance(tenant, sim):
    """An instance with service-account credentials, created through the API."""
    return api_instance(tenant, name="SA instance")


@pytest.fixture
def traced_instance(tenant, sim):
    """A service-account instance with ``traceLoggingEnabled``, created through the API."""
    return api_instance(tenant, name="traced", traced=True)


def element_client_for(tenant: Tenant) -> APIClient:
    """A client of a new service-account instance of ``tenant``, created through the API."""
    return tenant.element_client(api_instance(tenant)["token"])


BULK = "/elements/api-v2/bulk"


@pytest.fixture
def bulk_in_test_thread(settings, tmp_path, monkeypatch):
    """Bulk jobs as the tests run them: results under a temporary MEDIA_ROOT (returned), and the
    broker left out (each test runs its jobs with the real runner, e.g. ``completed_bulk_job``),
    so nothing is queued and no callback is sent."""
    from bulk import services

    settings.MEDIA_ROOT = str(tmp_path / "media")
    monkeypatch.setattr(services, "enqueue_job", lambda job_id: None)
    monkeypatch.setattr(services, "enqueue_callback", lambda job_id, countdown=None: None)
    return tmp_path / "media"


def completed_bulk_job(client: APIClient, q: str, **params) -> int:
    """A bulk job submitted through the API and run to COMPLETED by the real runner in the
    test's thread (the caller keeps the broker out, e.g. by replacing services.enqueue_job)."""
    from urllib.parse import quote

    from bulk import runner

    query = "&".join([f"q={quote(q)}"] + [f"{k}={quote(v)}" for k, v in params.items()])
    response = client.post(f"{BULK}/query?{query}")
    assert response.status_code == 200, response.content
    job_id = response.json()["id"]
    assert runner.run_job(job_id, heartbeat=False, pipelined=False) == "COMPLETED"
    return job_id


def bulk_status(client: APIClient, job_id: int) -> dict:
    return client.get(f"{BULK}/{job_id}/status").json()


def bulk_records(client: APIClient, job_id: int, object_name: str) -> list[dict]:
    """A job's records, downloaded as NDJSON."""
    response = client.get(f"{BULK}/{job_id}/{object_name}", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def bulk_sync(client: APIClient, q: str, object_name: str, **params) -> tuple[list[dict], dict]:
    """A bulk job run to COMPLETED: its records and its status (with the cursor it reached)."""
    job_id = completed_bulk_job(client, q, **params)
    return bulk_records(client, job_id, object_name), bulk_status(client, job_id)


class Crash(BaseException):
    """Stands for SIGKILL: nothing in the runner catches it."""


@contextmanager
def dying_at_part(n: int):
    """Within it, the worker dies (``Crash``) as it commits its ``n``th result part."""
    from bulk.models import BulkPart

    real_create = BulkPart.objects.create
    made = 0

    def create(**kwargs):
        nonlocal made
        made += 1
        if made == n:
            raise Crash()
        return real_create(**kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BulkPart.objects, "create", create)
        yield
