"""The example element: widgets of an imaginary vendor that takes an API key as a bearer token."""

from elements.framework.authentication import ApiKeyHeader
from elements.framework.definition import (
    Call,
    ConfigField,
    Element,
    ElementObject,
    ObjectField,
    Operation,
    Result,
)

WIDGET = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
    "required": ["id", "name"],
}
NO_INPUT = {"type": "object", "properties": {}, "additionalProperties": False}


def hosts(configuration: dict) -> dict[str, str]:
    return {"api": "https://api.example.invalid"}


# Credentials and retry safety come from the element and the operation: the handlers below
# pass neither (the vendor client adds ``Authorization: Bearer <api_key>`` to each request, and
# retries only the operations declared idempotent).


def verify(call: Call):
    return call.vendor.request("GET", "api", "/v1/me")


def list_widgets(call: Call) -> Result:
    response = call.vendor.request("GET", "api", "/v1/widgets")
    return Result(response.json(), vendor_status=response.status)


def get_widget(call: Call) -> Result:
    response = call.vendor.request("GET", "api", f"/v1/widgets/{call.inputs['id']}")
    return Result(response.json(), vendor_status=response.status)


def create_widget(call: Call) -> Result:
    # Not declared idempotent: a retried create could make two widgets.
    response = call.vendor.request(
        "POST", "api", "/v1/widgets", json_body={"name": call.inputs["name"]}
    )
    return Result(response.json(), vendor_status=response.status)


OPERATIONS = (
    Operation(
        id="getWidgets",
        method="GET",
        path="/widgets",
        name="list_widgets",
        handler=list_widgets,
        description="The account's widgets.",
        vendor_method="GET",
        vendor_path="/v1/widgets",
        input_schema=NO_INPUT,
        output_schema={"type": "array", "items": WIDGET},
        object_name="widgets",
        idempotent=True,
    ),
    Operation(
        id="getWidgetsById",
        method="GET",
        path="/widgets/{id}",
        handler=get_widget,
        description="One widget.",
        vendor_method="GET",
        vendor_path="/v1/widgets/{id}",
        input_schema={
            "type": "object",
            "properties": {"id": {"type": "integer", "x-in": "path"}},
            "required": ["id"],
            "additionalProperties": False,
        },
        output_schema=WIDGET,
        object_name="widgets",
        idempotent=True,
    ),
    Operation(
        id="createWidget",
        method="POST",
        path="/widgets",
        name="create_widget",
        handler=create_widget,
        description="Create a widget.",
        vendor_method="POST",
        vendor_path="/v1/widgets",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
            "required": ["name"],
            "additionalProperties": False,
        },
        output_schema=WIDGET,
        object_name="widgets",
    ),
)

ELEMENT = Element(
    id=90001,
    key="example",
    name="Example",
    description="Widgets of an imaginary vendor (a test element).",
    hub="general",
    authentication=ApiKeyHeader(key="api_key", header="Authorization", prefix="Bearer "),
    configuration=(
        ConfigField(key="api_key", name="API key", required=True, secret=True),
        ConfigField(key="account", name="Account id", type="integer"),
    ),
    operations=OPERATIONS,
    objects=(
        ElementObject(
            name="widgets",
            description="The account's widgets.",
            fields=(ObjectField("id", "integer"), ObjectField("name", "string")),
        ),
    ),
    hosts=hosts,
    verify=verify,
)
