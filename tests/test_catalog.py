"""The element catalog's platform rules (contract §4): who may read it, that it lists the
registry, and unknown elements. What each element shows there: the conformance suite
(tests/test_element_conformance.py) and the element's own tests (elements/<key>/tests/)."""

import pytest
from rest_framework.test import APIClient

from elements.framework.registry import all_elements

pytestmark = pytest.mark.django_db

BASE = "/elements/api-v2/elements"


def test_catalog_needs_user_and_organization(tenant):
    assert APIClient().get(BASE).status_code == 401
    assert tenant.client().get(BASE).status_code == 200


def test_keys_and_list(tenant):
    client = tenant.client()
    assert client.get(f"{BASE}/keys").json() == [e.key for e in all_elements()]
    listed = client.get(BASE).json()
    assert [e["key"] for e in listed] == [e.key for e in all_elements()]


def test_unknown_element_is_404(tenant):
    for suffix in ("", "/resources", "/metadata", "/docs"):
        response = tenant.client().get(f"{BASE}/nope{suffix}")
        assert response.status_code == 404 and response.json()["message"]
