"""Paths that name nothing are 404 in the error shape whatever auth the request carries; an
element-token 401 answers only paths where an element call could have been meant (a resource of
some element, or an operation some element names)."""

import pytest
from django.test import Client

from conftest import make_instance

API = "/elements/api-v2"

# Under platform resources, beside them, under the hub, and in operation style.
UNNAMED = [
    f"{API}/instances/1/enabledx",
    f"{API}/instances/1/token/extra",
    f"{API}/instances/1%2F2",
    f"{API}/instances/1/enabled/x",
    f"{API}/instances/x/y/z",
    f"{API}/usage/abc/def",
    f"{API}/elements/mixpanel/nothing",
    f"{API}/elements/mixpanel/instances/1/x",
    f"{API}/nothing",
    f"{API}/hubs/general/nothing",
    f"{API}/hubs/general/users/1/2",
    f"{API}/hubs/general",
    f"{API}/users/1/2",
    "/mixpanel/no_such_operation/1",
    "/nosuch/import_events/1",
]


@pytest.fixture
def auths(tenant):
    _, token = make_instance(tenant)
    return {
        "none": None,
        "user+organization": tenant.platform_auth,
        "user+element": tenant.element_auth(token),
        "malformed": "Bearer something",
    }


def call(method, path, auth):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return Client().generic(method, path, **headers)


@pytest.mark.parametrize("path", UNNAMED)
def test_a_path_that_names_nothing_is_404_whatever_the_auth(auths, path):
    for kind, auth in auths.items():
        for method in ("GET", "POST", "DELETE"):
            response = call(method, path, auth)
            assert response.status_code == 404, (kind, method, response.content)
            body = response.json()
            assert set(body) == {"requestId", "message"}, body
            assert body["requestId"] == response["Elements-Request-Id"]
            assert "Element <token>" not in body["message"]


@pytest.mark.parametrize(
    "path",
    [
        f"{API}/hubs/general/users",
        f"{API}/users/some-id",
        f"{API}/ping",
        f"{API}/hubs/crm/activities/top/",
        "/mixpanel/query_profiles/1",
    ],
)
def test_an_element_resource_still_asks_for_an_element_token(auths, path):
    for kind in ("none", "user+organization"):
        response = call("GET", path, auths[kind])
        assert response.status_code == 401, (kind, response.content)
        assert response.json()["message"]


def test_the_named_paths_still_answer_their_callers(tenant, auths, sim):
    instance, token = make_instance(tenant, name="second")
    platform = {"HTTP_AUTHORIZATION": auths["user+organization"]}
    assert Client().get(f"{API}/instances/{instance.pk}", **platform).status_code == 200
    assert Client().put(f"{API}/instances/{instance.pk}/enabled", **platform).status_code == 200
    # A platform resource with a method it does not take: 405, not 404.
    assert Client().get(f"{API}/instances/{instance.pk}/enabled", **platform).status_code == 405
    element = {"HTTP_AUTHORIZATION": tenant.element_auth(token)}
    assert Client().get(f"{API}/hubs/general/ping", **element).status_code == 200
    # A resource of the element with a method it does not take: the element's 405.
    assert Client().delete(f"{API}/hubs/general/activities/top", **element).status_code == 405
    # Platform routes keep asking for the platform's credentials.
    response = Client().put(f"{API}/instances/{instance.pk}/enabled")
    assert response.status_code == 401
