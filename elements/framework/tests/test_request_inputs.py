"""From a request to an operation's inputs: text (CSV) bodies and the path properties of an
operation reached in operation style (unit tests: no vendor, no HTTP)."""

import pytest

from elements.framework.definition import Operation, Result, TextBody
from elements.framework.dispatch import request_inputs
from elements.framework.openapi import operation_object
from platform_core.exceptions import PlatformError, ValidationFailed


def _echo(call):
    return Result(call.inputs)


def _operation(
    method: str, *, text_body: TextBody | None = None, required=(), **properties
) -> Operation:
    return Operation(
        id="thing",
        name="thing",
        method=method,
        path="/things/{id}",
        handler=_echo,
        description="A thing.",
        vendor_method=method,
        vendor_path="/things/{id}",
        input_schema={
            "type": "object",
            "properties": {"id": {"type": "integer", "x-in": "path"}, **properties},
            "required": ["id", *required],
            "additionalProperties": False,
        },
        output_schema={"type": "object"},
        text_body=text_body,
    )


UPLOAD = _operation(
    "PUT",
    text_body=TextBody(property="table"),
    required=("table",),
    table={"type": "string", "minLength": 1, "x-in": "body"},
)


def _inputs(op, raw=b"", content_type="", query=None, path_params=None):
    return request_inputs(
        op,
        raw=raw,
        content_type=content_type,
        query=query or {},
        path_params=path_params if path_params is not None else {},
    )


def test_a_text_body_is_one_input():
    inputs = _inputs(UPLOAD, b"a,b\n1,2\n", "text/csv", path_params={"id": "7"})
    assert inputs == {"id": 7, "table": "a,b\n1,2\n"}


def test_a_text_body_is_decoded_with_the_requests_charset():
    inputs = _inputs(
        UPLOAD, "a,b\nü,2\n".encode("latin-1"), "text/csv; charset=latin-1", None, {"id": "1"}
    )
    assert inputs["table"] == "a,b\nü,2\n"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_a_text_body_of_another_media_type_is_415(content_type):
    with pytest.raises(PlatformError) as refused:
        _inputs(UPLOAD, b"a,b\n", content_type, path_params={"id": "1"})
    assert refused.value.status_code == 415
    assert "text/csv" in str(refused.value.detail)


@pytest.mark.parametrize(
    "raw,content_type",
    [
        (b"", "text/csv"),
        (b"\xff\xfe", "text/csv"),
        (b"a\x00b", "text/csv"),
        (b"a,b", "text/csv; charset=no-such-charset"),
    ],
)
def test_a_missing_or_undecodable_text_body_is_400_naming_its_input(raw, content_type):
    with pytest.raises(ValidationFailed) as refused:
        _inputs(UPLOAD, raw, content_type, path_params={"id": "1"})
    assert [e["field"] for e in refused.value.errors] == ["table"]


def test_operation_style_takes_path_properties_from_the_query_or_the_body():
    read = _operation("GET")
    assert _inputs(read, query={"id": ["5"]}) == {"id": 5}
    change = _operation("PATCH", note={"type": "string"})
    assert _inputs(change, b'{"id": 5, "note": "x"}', "application/json") == {"id": 5, "note": "x"}
    # With a text body, the body is the text: the path's properties come in the query.
    assert _inputs(UPLOAD, b"a,b\n", "text/csv", query={"id": ["5"]})["id"] == 5


def test_resource_style_takes_path_properties_from_the_path_only():
    with pytest.raises(ValidationFailed) as refused:
        _inputs(_operation("GET"), query={"id": ["5"]}, path_params={"id": "6"})
    assert refused.value.errors == [{"field": "id", "message": "unknown query parameter"}]


def test_openapi_shows_the_text_body_and_each_styles_parameters():
    resource = operation_object(UPLOAD, operation_style=False)
    assert resource["requestBody"]["content"] == {"text/csv": {"schema": UPLOAD_SCHEMA}}
    assert [(p["name"], p["in"]) for p in resource["parameters"]] == [("id", "path")]
    operation = operation_object(UPLOAD, operation_style=True)
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("instanceId", "path"),
        ("id", "query"),
    ]
    change = operation_object(_operation("PATCH", note={"type": "string"}), operation_style=True)
    assert set(change["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {
        "id",
        "note",
    }


UPLOAD_SCHEMA = {"type": "string", "minLength": 1}
