"""Inputs of an operation reachable in both URL styles: a resource path's parameter comes from
the path in resource style and from the query string in operation style (which has no resource
path), typed alike; the OpenAPI document says so."""

import pytest

from elements.framework.definition import Operation
from elements.framework.dispatch import assemble_inputs
from elements.framework.openapi import operation_object
from platform_core.exceptions import ValidationFailed

FUNNEL = Operation(
    id="getFunnel",
    name="funnel_query",
    method="GET",
    path="/funnels/{funnelId}",
    handler=lambda call: None,
    description="One funnel.",
    vendor_method="GET",
    vendor_path="/funnels",
    input_schema={
        "type": "object",
        "properties": {
            "funnelId": {"type": "integer", "minimum": 1, "x-in": "path"},
            "unit": {"type": "string"},
        },
        "required": ["funnelId"],
        "additionalProperties": False,
    },
    output_schema={"type": "object"},
)


def test_resource_style_reads_the_path():
    inputs = assemble_inputs(
        FUNNEL, query={"unit": ["day"]}, body=None, path_params={"funnelId": "7"}
    )
    assert inputs == {"funnelId": 7, "unit": "day"}


def test_resource_style_refuses_the_path_parameter_in_the_query():
    with pytest.raises(ValidationFailed) as raised:
        assemble_inputs(FUNNEL, query={"funnelId": ["8"]}, body=None, path_params={"funnelId": "7"})
    assert raised.value.errors == [{"field": "funnelId", "message": "unknown query parameter"}]


def test_operation_style_reads_it_from_the_query():
    inputs = assemble_inputs(FUNNEL, query={"funnelId": ["7"]}, body=None, path_params={})
    assert inputs == {"funnelId": 7}
    with pytest.raises(ValidationFailed) as raised:
        assemble_inputs(FUNNEL, query={}, body=None, path_params={})
    assert raised.value.errors[0]["field"] == "funnelId"


def test_openapi_puts_it_in_the_query_for_operation_style():
    def where(doc):
        return {p["name"]: (p["in"], p["required"]) for p in doc["parameters"]}

    assert where(operation_object(FUNNEL, operation_style=False))["funnelId"] == ("path", True)
    assert where(operation_object(FUNNEL, operation_style=True))["funnelId"] == ("query", True)
