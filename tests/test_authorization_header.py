import pytest
from rest_framework.exceptions import AuthenticationFailed

from platform_core.authentication import parse_authorization


@pytest.mark.parametrize(
    "header",
    [
        "User u1, Organization o1",
        "Organization o1, User u1",
        "user u1,organization o1",
        "USER u1 ,   ORGANIZATION   o1",
        "User u1,\tOrganization o1",
    ],
)
def test_any_order_case_and_spacing(header):
    assert parse_authorization(header) == {"user": "u1", "organization": "o1"}


def test_three_schemes():
    assert parse_authorization("Element t, User u, Organization o") == {
        "element": "t",
        "user": "u",
        "organization": "o",
    }


@pytest.mark.parametrize(
    "header",
    [
        "",
        "User",
        "User u1 extra, Organization o1",
        "Bearer abc",
        "Basic dXNlcjpwYXNz",
        "User u1, User u2",
        "User u1,, Organization o1",
        "User u1, Organization",
        "x" * 5000,
        "User u1; Organization o1",
    ],
)
def test_malformed_headers_are_401(header):
    with pytest.raises(AuthenticationFailed):
        parse_authorization(header)
