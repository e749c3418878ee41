"""What most Mixpanel tests call through: the element client of a service-account instance
(``sa_instance``, root conftest) and that instance's id. A module with another instance
defines its own ``element`` and ``iid``."""

import pytest


@pytest.fixture
def element(tenant, sa_instance):
    return tenant.element_client(sa_instance["token"])


@pytest.fixture
def iid(sa_instance):
    return sa_instance["id"]
