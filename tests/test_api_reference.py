"""The platform's OpenAPI document and the pages that render it (in-process; the fuzz test
``tests/test_api_fuzz.py`` runs the same document against gunicorn)."""

import re

from django.core.management import call_command
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from elements.mixpanel import ELEMENT as MIXPANEL

DOC = "/elements/api-v2/openapi.json"
METHODS = {"get", "put", "post", "delete", "patch"}


def _document() -> dict:
    response = APIClient().get(DOC)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_document_is_valid_openapi_31_and_public():
    doc = _document()
    validate(doc)  # openapi-spec-validator: OpenAPI 3.1 and its JSON Schema dialect
    assert doc["openapi"] == "3.1.0"
    # A malformed Authorization header does not stop a public document.
    assert APIClient(HTTP_AUTHORIZATION="garbage").get(DOC).status_code == 200


def test_document_has_every_platform_endpoint_and_every_element_operation():
    doc = _document()
    paths = doc["paths"]
    for path, methods in {
        "/elements/api-v2/instances": {"get", "post"},
        "/elements/api-v2/instances/{instanceId}": {"get", "put", "patch", "delete"},
        "/elements/api-v2/instances/{instanceId}/enabled": {"put", "delete"},
        "/elements/api-v2/instances/{instanceId}/token": {"put"},
        "/elements/api-v2/elements/{keyOrId}/instances": {"get", "post"},
        "/elements/api-v2/elements": {"get"},
        "/elements/api-v2/elements/keys": {"get"},
        "/elements/api-v2/elements/{keyOrId}/docs": {"get"},
        "/elements/api-v2/bulk/query": {"post"},
        "/elements/api-v2/bulk/jobs": {"get"},
        "/elements/api-v2/bulk/{id}/status": {"get"},
        "/elements/api-v2/bulk/{id}/cancel": {"put"},
        "/elements/api-v2/bulk/{id}/{objectName}": {"get"},
        "/elements/api-v2/usage": {"get"},
        "/elements/api-v2/usage/{requestId}": {"get"},
        "/{elementKey}/{operation}": {"get"},
    }.items():
        assert set(paths[path]) == methods, path
    for op in MIXPANEL.operations:
        if op.path:
            assert op.method.lower() in paths[f"/elements/api-v2/hubs/general{op.path}"]
        if op.name:
            assert op.method.lower() in paths[f"/mixpanel/{op.name}/{{instanceId}}"]
    # Path parameters are declared where, and only where, the path has them.
    for path, _, op in _operations(doc):
        declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), path
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))


def test_each_operation_names_its_authorization_scheme():
    doc = _document()
    schemes = doc["components"]["securitySchemes"]
    assert (
        "User <user secret>, Organization <organization secret>"
        in (schemes["UserOrganization"]["description"])
    )
    assert "User <user secret>, Element <instance" in schemes["UserElement"]["description"]
    for scheme in schemes.values():
        assert (scheme["type"], scheme["in"], scheme["name"]) == (
            "apiKey",
            "header",
            "Authorization",
        )
    expected = {
        "/elements/api-v2/instances": "UserOrganization",
        "/elements/api-v2/elements/keys": "UserOrganization",
        "/elements/api-v2/usage": "UserOrganization",
        "/elements/api-v2/bulk/jobs": "UserElement",
        "/elements/api-v2/hubs/general/ping": "UserElement",
        "/mixpanel/query_profiles/{instanceId}": "UserElement",
    }
    for path, scheme in expected.items():
        for op in doc["paths"][path].values():
            assert op["security"] == [{scheme: []}], path
    # Operation schemas need no auth: the empty requirement.
    assert doc["paths"]["/{elementKey}/{operation}"]["get"]["security"] == [{}]


def test_errors_have_the_platform_error_shape():
    doc = _document()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["requestId", "message"]
    for path, method, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
        if any(op.get("security", [{}])):
            assert "401" in op["responses"], (path, method)
    instances = doc["paths"]["/elements/api-v2/instances"]["post"]["responses"]
    assert {"400", "401", "413", "415", "502", "504"} <= set(instances)
    ping = doc["paths"]["/elements/api-v2/hubs/general/ping"]["get"]["responses"]
    assert {"401", "403", "404", "429", "502", "504"} <= set(ping)
    cancel = doc["paths"]["/elements/api-v2/bulk/{id}/cancel"]["put"]["responses"]
    assert {"403", "404", "409"} <= set(cancel)


def test_bulk_download_lists_its_content_types():
    doc = _document()
    download = doc["paths"]["/elements/api-v2/bulk/{id}/{objectName}"]["get"]["responses"]
    assert set(download["200"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
        "text/csv",
    }
    assert {"406", "409"} <= set(download)


def test_element_documents_are_unchanged_by_the_merge(tenant):
    own = tenant.client().get("/elements/api-v2/elements/mixpanel/docs").json()
    validate(own)
    assert own["servers"] == [{"url": "/elements/api-v2"}]
    assert "/hubs/general/ping" in own["paths"]


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_swagger_ui_page_loads_local_assets_only():
    response = APIClient().get("/elements/api-v2/api-docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = _local_assets(html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    assert "//" not in "".join(assets)  # no CDN, no other host
    assert all(
        a.startswith(("/static/drf_spectacular_sidecar/", "/elements/api-v2/")) for a in assets
    )
    # The page's script points Swagger UI at the document.
    script = next(a for a in assets if "script" in a).replace("&amp;", "&")
    js = APIClient().get(script)
    assert js.status_code == 200
    assert '"validatorUrl": null' in js.content.decode()  # no badge from validator.swagger.io
    assert f'url: "{DOC}"' in js.content.decode().replace("\\u002D", "-")


def test_redoc_page_loads_local_assets_only():
    response = APIClient().get("/elements/api-v2/redoc/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in html
    assert DOC in html
    assert "https://" not in html and "http://" not in html  # no fonts or scripts from elsewhere


def test_generation_has_no_warnings(tmp_path):
    """drf-spectacular warns when it has to guess (an unannotated view, a path parameter of
    unknown type); the document must not depend on guesses."""
    call_command("spectacular", "--fail-on-warn", "--validate", file=str(tmp_path / "openapi.json"))
    assert (tmp_path / "openapi.json").stat().st_size > 10_000
