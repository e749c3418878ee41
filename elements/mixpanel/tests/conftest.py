"""What most Mixpanel tests call through: an instance (``sa_instance``, root conftest, unless
a module defines its own ``instance``), its element client and its id."""

import pytest


@pytest.fixture
def instance(sa_instance):
    return sa_instance


@pytest.fixture
def element(tenant, instance):
    return tenant.element_client(instance["token"])


@pytest.fixture
def iid(instance):
    return instance["id"]
