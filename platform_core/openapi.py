"""The pieces of the platform's OpenAPI document that drf-spectacular cannot infer: the
``Authorization`` schemes, the error shape of ``exceptions.py``, paging, and the paths of views
routed by regular expressions. Views annotate themselves with ``extend_schema`` using these;
elements merge their own documents in (``elements/framework/openapi.py``)."""

from __future__ import annotations

import re
import threading

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiJsonRenderer2
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.response import Response

from platform_core.conf import platform_settings
from platform_core.pagination import NEXT_PAGE_HEADER

# The body of every error (contract §2, ``exceptions.error_body``).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["requestId", "message"],
    "properties": {
        "requestId": {"type": "string"},
        "message": {"type": "string"},
        "providerMessage": {"type": "string"},
        "providerStatus": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# Named schemas of the document's components, registered by the modules that define the shapes.
COMPONENTS: dict[str, dict] = {"Error": ERROR_SCHEMA}


def component(name: str, schema: dict) -> dict:
    """Register ``schema`` as ``components.schemas[name]``; returns a ``$ref`` to it."""
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_DESCRIPTIONS = {
    400: "Bad input: the message says what, and errors[] names each field",
    401: "Not authenticated (WWW-Authenticate: User)",
    403: "The instance is disabled",
    404: "Not found (another tenant's objects are not found either)",
    405: "Method not allowed (see Allow)",
    406: "Cannot produce the requested format",
    409: "Conflict with the object's state",
    413: "Request body too large (MAX_REQUEST_BYTES)",
    415: "Unsupported Content-Type or charset: send UTF-8 JSON",
    429: "Rate limited by the vendor (see Retry-After)",
    502: "The vendor failed or answered garbage",
    504: "The vendor timed out",
}

# What every endpoint of a kind can answer besides its own errors.
PLATFORM_ERRORS = (400, 401)
BODY_ERRORS = (413, 415)
VENDOR_ERRORS = (429, 502, 504)

USER_ORGANIZATION = "UserOrganization"
USER_ELEMENT = "UserElement"


def error_responses(*statuses: int) -> dict:
    """``extend_schema(responses=...)`` entries for these statuses, in the error shape."""
    return {
        status: OpenApiResponse(response=ERROR_REF, description=ERROR_DESCRIPTIONS[status])
        for status in sorted(set(statuses))
    }


def json_response(schema: dict, description: str = "Success") -> OpenApiResponse:
    return OpenApiResponse(response=schema, description=description)


PAGE_PARAMETERS = [
    OpenApiParameter(
        "pageSize",
        {"type": "integer", "minimum": 1, "maximum": platform_settings.MAX_PAGE_SIZE},
        description="Items per page (1 to MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE).",
    ),
    OpenApiParameter(
        "nextPage",
        OpenApiTypes.STR,
        description=f"The cursor of the previous page's {NEXT_PAGE_HEADER} header.",
    ),
    OpenApiParameter(
        NEXT_PAGE_HEADER,
        OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        response=[200],
        description="The cursor of the next page, when this page was full.",
    ),
]


def path_parameter(name: str, description: str, type_=OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.PATH, description=description)


def _header_scheme(description: str) -> dict:
    return {"type": "apiKey", "in": "header", "name": "Authorization", "description": description}


SECURITY_SCHEMES = {
    USER_ORGANIZATION: _header_scheme(
        "Platform calls (instances, catalog, usage): "
        "`Authorization: User <user secret>, Organization <organization secret>`."
    ),
    USER_ELEMENT: _header_scheme(
        "Element calls and bulk jobs: `Authorization: User <user secret>, Element <instance "
        "token>` (an `Organization <secret>` part may be added; it must then match)."
    ),
}


class UserOrganizationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.OrganizationUserAuthentication"
    name = USER_ORGANIZATION

    def get_security_definition(self, auto_schema):
        return SECURITY_SCHEMES[USER_ORGANIZATION]


class UserElementScheme(OpenApiAuthenticationExtension):
    target_class = "instances.authentication.ElementAuthentication"
    name = USER_ELEMENT

    def get_security_definition(self, auto_schema):
        return SECURITY_SCHEMES[USER_ELEMENT]


# --- drf-spectacular hooks (SPECTACULAR_SETTINGS) ---------------------------------------------

_PARAMETER = re.compile(r"\{(\w+)\}")
_CAMEL = {"job_id": "id"}  # as the README writes bulk paths: /bulk/{id}/status


def _camel(name: str) -> str:
    return _CAMEL.get(name, re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name))


def document_paths(endpoints):
    """Preprocessing hook: path parameters in the API's camelCase (``{instanceId}``), as in
    the element documents. Routes that tolerate a trailing slash are named without it."""
    return [
        (
            _PARAMETER.sub(lambda m: "{" + _camel(m.group(1)) + "}", path.rstrip("/") or "/"),
            path_regex,
            method,
            callback,
        )
        for path, path_regex, method, callback in endpoints
    ]


def add_components(result, generator, request, public):
    """Postprocessing hook: the named schemas the views' annotations refer to; and, as one view
    serves several routes (``/instances`` and ``/elements/{keyOrId}/instances``), each route
    keeps only the path parameters it has, and the element-scoped route an id of its own."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    for path, item in result.get("paths", {}).items():
        for operation in item.values():
            if "/{keyOrId}/instances" in path:
                operation["operationId"] += "OfElement"
            operation["parameters"] = [
                p
                for p in operation.get("parameters", ())
                if p["in"] != "path" or "{" + p["name"] + "}" in path
            ]
            if not operation["parameters"]:
                del operation["parameters"]
    return result


# --- the served document and its pages ---------------------------------------------------------


class PlatformSchemaView(SpectacularJSONAPIView):
    """``GET /elements/api-v2/openapi.json``: the whole platform's document, without auth.

    Built once per process (it changes only with the code) and kept: it is public, and
    generating it costs tens of milliseconds."""

    # application/json unless the client asks for application/vnd.oai.openapi+json.
    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer]
    _document = None
    _lock = threading.Lock()

    def _get_schema_response(self, request):
        cls = type(self)
        with cls._lock:
            if cls._document is None:
                cls._document = super()._get_schema_response(request).data
        return Response(cls._document)
