"""What an operation needs of the configuration, an operation's own authentication, and the
integer_map configuration type (unit tests: no vendor, no database)."""

import json

import pytest

from elements.framework.authentication import ApiKeyHeader, BasicAuthentication
from elements.framework.catalog import element_metadata, resource_representation
from elements.framework.configuration import clean_configuration
from elements.framework.definition import (
    ConfigField,
    ConfigurationNeed,
    Element,
    ElementObject,
    Operation,
    Result,
)
from elements.framework.dispatch import make_call, run_operation
from elements.framework.openapi import openapi_document
from platform_core.exceptions import ValidationFailed

CALLS = []


def _record(call):
    CALLS.append(call)
    return Result({"ok": True})


ONE_OF_KEYS = ConfigurationNeed(
    fields=("token", "secret"),
    description="token, or secret",
    missing=lambda configuration, inputs: (
        () if configuration.get("token") or configuration.get("secret") else ("token",)
    ),
    example=lambda configuration, inputs: {"token": f"<token for {inputs.get('thing', '?')}>"},
)


def _operation(op_id, needs=(), **extra):
    return Operation(
        id=op_id,
        method="GET",
        path=f"/{op_id}",
        object_name="things",
        handler=_record,
        description="Read.",
        vendor_method="GET",
        vendor_path="/things",
        input_schema={"type": "object", "properties": {"thing": {"type": "string"}}},
        output_schema={"type": "object"},
        requires_configuration=needs,
        **extra,
    )


ELEMENT = Element(
    id=999002,
    key="needs",
    name="Needs",
    description="Built in a test.",
    hub="general",
    authentication=BasicAuthentication(username_key="user", password_key="password"),
    configuration=(
        ConfigField(key="user", name="User", required=True),
        ConfigField(key="password", name="Password", secret=True),
        ConfigField(key="token", name="Token", secret=True),
        ConfigField(key="secret", name="Secret", secret=True),
        ConfigField(key="groups", name="Groups", type="integer_map"),
    ),
    operations=(
        _operation("plain"),
        _operation("keyed", needs=("token", "groups")),
        _operation("rule", needs=(ONE_OF_KEYS,)),
        _operation(
            "bearer",
            authentication=ApiKeyHeader(key="token", header="Authorization", prefix="Bearer "),
        ),
    ),
    hosts=lambda configuration: {"api": "https://api.example.test"},
    verify=lambda call: None,
    objects=(ElementObject(name="things", description="Things."),),
)


def run(op_id, configuration, inputs=None):
    CALLS.clear()
    return run_operation(
        ELEMENT,
        ELEMENT.operation(op_id),
        instance_id=41,
        configuration=configuration,
        inputs=inputs or {},
    )


def test_an_operation_without_needs_runs():
    assert run("plain", {"user": "u"}).body == {"ok": True}


def test_missing_keys_are_400_naming_each_with_the_patch_before_the_handler():
    with pytest.raises(ValidationFailed) as failed:
        run("keyed", {"user": "u", "groups": {}})
    assert not CALLS
    error = failed.value
    assert [e["field"] for e in error.errors] == ["configuration.token", "configuration.groups"]
    hint = (
        "PATCH /elements/api-v2/instances/41 "
        '{"configuration": {"token": "<Token>", "groups": "<Groups>"}}'
    )
    assert hint in error.message and all(hint in e["message"] for e in error.errors)
    assert run("keyed", {"user": "u", "token": "t", "groups": {"a": 1}}).body == {"ok": True}


def test_a_rule_decides_what_is_missing_and_shows_its_example():
    assert run("rule", {"user": "u", "secret": "s"}).body == {"ok": True}
    with pytest.raises(ValidationFailed) as failed:
        run("rule", {"user": "u"}, {"thing": "x"})
    assert [e["field"] for e in failed.value.errors] == ["configuration.token"]
    assert "token (token, or secret)" in failed.value.message
    body = failed.value.message.split("/instances/41 ", 1)[1]
    assert json.loads(body) == {"configuration": {"token": "<token for x>"}}


def test_needs_are_in_the_catalog_the_metadata_and_the_openapi_document():
    keyed = ELEMENT.operation("keyed")
    representation = resource_representation(ELEMENT, keyed)["requiredConfiguration"]
    assert representation == [
        {"fields": ["token"], "description": "token in the configuration"},
        {"fields": ["groups"], "description": "groups in the configuration"},
    ]
    things = element_metadata(ELEMENT)["objects"]["things"]["operations"]
    by_id = {o["operationId"]: o["requiredConfiguration"] for o in things}
    assert by_id["rule"] == [{"fields": ["token", "secret"], "description": "token, or secret"}]
    assert by_id["plain"] == []
    doc = openapi_document(ELEMENT)
    rule = doc["paths"]["/hubs/general/rule"]["get"]["x-required-configuration"]
    assert rule == [{"fields": ["token", "secret"], "description": "token, or secret"}]
    assert (
        resource_representation(ELEMENT, ELEMENT.operation("plain"))["requiredConfiguration"] == []
    )


def test_an_operation_may_authenticate_its_own_way():
    configuration = {"user": "u", "password": "p", "token": "t0k"}
    own = make_call(
        ELEMENT, instance_id=1, configuration=configuration, operation=ELEMENT.operation("bearer")
    )
    assert own.vendor.auth_headers == {"Authorization": "Bearer t0k"}
    element_wide = make_call(
        ELEMENT, instance_id=1, configuration=configuration, operation=ELEMENT.operation("plain")
    )
    assert element_wide.vendor.auth_headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    "value,stored",
    [
        ({"a": 1, "b": -9223372036854775808}, {"a": 1, "b": -9223372036854775808}),
        ({"a": " -12 "}, {"a": -12}),
        ('{"a": "7"}', {"a": 7}),
        ("{}", {}),
    ],
)
def test_integer_map_accepts_objects_and_their_json_text(value, stored):
    assert clean_configuration(ELEMENT, {"user": "u", "groups": value})["groups"] == stored


@pytest.mark.parametrize(
    "value,field",
    [
        ({"a": "x"}, "configuration.groups.a"),
        ({"a": 1.5}, "configuration.groups.a"),
        ({"a": None}, "configuration.groups.a"),
        ({"a": "99999999999999999999"}, "configuration.groups.a"),
        ({"a": 2**63}, "configuration.groups.a"),
        ("nope", "configuration.groups"),
        ('"text"', "configuration.groups"),
        ([1], "configuration.groups"),
        ({str(i): i for i in range(101)}, "configuration.groups"),
        ({"k" * 256: 1}, "configuration.groups"),
    ],
)
def test_integer_map_refuses_anything_else(value, field):
    with pytest.raises(ValidationFailed) as failed:
        clean_configuration(ELEMENT, {"user": "u", "groups": value})
    assert field in {e["field"] for e in failed.value.errors}, failed.value.errors
