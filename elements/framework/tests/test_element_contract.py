"""The element contract: authentication strategies, configuration as JSON Schema, and one way
to build a Call (unit tests: no vendor)."""

import pytest

from elements.framework.authentication import ApiKeyHeader, BasicAuthentication, basic_auth
from elements.framework.configuration import clean_configuration
from elements.framework.definition import ConfigField, Element, Operation, Result
from elements.framework.dispatch import make_call
from elements.framework.registry import all_elements, register
from platform_core.exceptions import ValidationFailed


def _echo(call):
    return Result({"ok": True})


def example_element(authentication) -> Element:
    return register(
        Element(
            id=999001,
            key="example",
            name="Example",
            description="Built in a test.",
            hub="general",
            authentication=authentication,
            configuration=(
                ConfigField(key="api_key", name="API key", required=True, secret=True),
                ConfigField(key="count", name="Count", type="integer"),
                ConfigField(key="flag", name="Flag", type="boolean"),
                ConfigField(key="zone", name="Zone", type="enum", choices=("EU", "US")),
            ),
            operations=(
                Operation(
                    id="read",
                    method="GET",
                    path="/things",
                    handler=_echo,
                    description="Read.",
                    vendor_method="GET",
                    vendor_path="/things",
                    input_schema={"type": "object", "properties": {}},
                    output_schema={"type": "object"},
                    idempotent=True,
                ),
                Operation(
                    id="write",
                    method="POST",
                    path="/things",
                    handler=_echo,
                    description="Write.",
                    vendor_method="POST",
                    vendor_path="/things",
                    input_schema={"type": "object", "properties": {}},
                    output_schema={"type": "object"},
                ),
            ),
            hosts=lambda configuration: {"api": "https://api.example.test"},
            verify=lambda call: call.vendor.request("GET", "api", "/me"),
        )
    )


def test_basic_authentication_sends_the_configured_username_and_password():
    strategy = BasicAuthentication(username_key="user", password_key="secret")
    assert strategy.type == "basic"
    assert strategy.headers({"user": "u", "secret": "p"}) == {"Authorization": basic_auth("u", "p")}
    # No password: sent empty (an API secret alone is a username).
    assert strategy.headers({"user": "u"}) == {"Authorization": basic_auth("u", "")}
    assert basic_auth("u", "p") == "Basic dTpw"


def test_api_key_header_sends_one_value_in_the_vendors_header():
    strategy = ApiKeyHeader(key="api_key", header="Authorization", prefix="Bearer ")
    assert strategy.type == "apiKey"
    assert strategy.headers({"api_key": "k1"}) == {"Authorization": "Bearer k1"}
    assert strategy.headers({}) == {}
    assert ApiKeyHeader(key="api_key").headers({"api_key": "k1"}) == {"X-Api-Key": "k1"}


def test_the_call_takes_authentication_from_the_element_and_retry_safety_from_the_operation():
    element = example_element(ApiKeyHeader(key="api_key"))
    assert element.auth_type == "apiKey"
    read = make_call(
        element,
        instance_id=1,
        configuration={"api_key": "k1"},
        operation=element.operation("read"),
    )
    write = make_call(
        element,
        instance_id=1,
        configuration={"api_key": "k1"},
        operation=element.operation("write"),
    )
    assert read.vendor.auth_headers == {"X-Api-Key": "k1"} and read.vendor.idempotent is True
    assert write.vendor.idempotent is False and write.operation.id == "write"
    assert read.vendor.deadline is not None and read.inputs == {}


def test_the_registry_gives_every_element_the_common_operations_once():
    element = example_element(BasicAuthentication())
    register(element)  # a second time adds nothing
    ids = [op.id for op in element.operations]
    assert ids == ["read", "write", "ping", "getObjects", "getObjectMetadata"]
    for found in all_elements():
        assert found.operation("ping") and found.operation("getObjectMetadata")


def test_configuration_fields_are_json_schema():
    assert ConfigField(key="a", name="A").json_schema() == {"type": "string", "maxLength": 4096}
    zone = ConfigField(key="z", name="Z", type="enum", choices=("EU", "US")).json_schema()
    assert zone["x-error"] == "must be one of EU, US"
    schema = example_element(BasicAuthentication()).configuration_schema
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) >= {"api_key", "count", "flag", "zone"}


def test_configuration_values_are_stored_in_their_own_type():
    element = example_element(BasicAuthentication())
    clean = clean_configuration(
        element, {"api_key": "k", "count": " 12 ", "flag": "TRUE", "zone": "eu"}
    )
    assert clean == {"api_key": "k", "count": 12, "flag": True, "zone": "EU"}


@pytest.mark.parametrize(
    "configuration, field, message",
    [
        ({"api_key": "k", "count": "twelve"}, "configuration.count", "must be an integer"),
        ({"api_key": "k", "count": True}, "configuration.count", "must be an integer"),
        ({"api_key": "k", "flag": "yes"}, "configuration.flag", "must be a boolean"),
        ({"api_key": "k", "zone": "MARS"}, "configuration.zone", "must be one of EU, US"),
        ({"api_key": 5}, "configuration.api_key", "must be of type string"),
        ({"api_key": "k", "nope": 1}, "configuration.nope", "unknown field"),
        ({"count": 1}, "configuration.api_key", "is required"),
        ({"api_key": "a\x00b"}, "configuration.api_key", "must not contain NUL characters"),
        ({"api_key": "********"}, "configuration.api_key", "the mask is not a value"),
    ],
)
def test_bad_configuration_names_the_field(configuration, field, message):
    element = example_element(BasicAuthentication())
    with pytest.raises(ValidationFailed) as caught:
        clean_configuration(element, configuration)
    assert {"field": field, "message": message} in caught.value.errors


def test_a_patch_merges_removes_and_keeps_masked_secrets():
    element = example_element(BasicAuthentication())
    current = {"api_key": "stored", "count": 3}
    clean = clean_configuration(
        element, {"api_key": "********", "count": None, "zone": "us"}, current=current
    )
    assert clean == {"api_key": "stored", "zone": "US"}
