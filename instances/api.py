"""Instance endpoints of contract §3. Views only translate: services write, selectors read."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.response import Response
from rest_framework.views import APIView

from elements.framework.registry import element_by_key_or_id
from instances import selectors, services
from instances.representations import (
    INSTANCE_CREATE_SCHEMA,
    INSTANCE_PATCH_SCHEMA,
    INSTANCE_PUT_SCHEMA,
    INSTANCE_SCHEMA,
    instance_representation,
)
from platform_core.exceptions import NotFound, ValidationFailed
from platform_core.openapi import (
    BODY_ERRORS,
    PAGE_PARAMETERS,
    PLATFORM_ERRORS,
    VENDOR_ERRORS,
    error_responses,
    json_response,
    path_parameter,
)
from platform_core.pagination import page_params, paged_headers
from platform_core.validation import validate

MAX_SEARCH_TEXT = 255


def _represent(instance, *, token=None, configuration=None) -> dict:
    return instance_representation(
        instance,
        configuration=configuration
        if configuration is not None
        else services.configuration_of(instance),
        token=token if token is not None else services.token_of(instance),
    )


def _validate_flag(request) -> bool:
    value = request.query_params.get("validate", "true").lower()
    if value not in ("true", "false", "1", "0"):
        raise ValidationFailed(
            "validate must be true or false.",
            errors=[{"field": "validate", "message": "must be true or false"}],
        )
    return value in ("true", "1")


def _element_from_body(body: dict, url_element=None):
    ref = body.get("element")
    element = url_element
    if ref is not None:
        key_or_id = str(ref.get("key") if "key" in ref else ref.get("id"))
        named = element_by_key_or_id(key_or_id)
        if named is None:
            raise NotFound(f"No element {key_or_id[:64]}.")
        if url_element is not None and named is not url_element:
            raise ValidationFailed(
                "The body names another element than the URL.",
                errors=[{"field": "element", "message": "does not match the URL"}],
            )
        element = named
    if element is None:
        raise ValidationFailed(errors=[{"field": "element", "message": "is required"}])
    return element


def _url_element(key_or_id):
    if key_or_id is None:
        return None
    element = element_by_key_or_id(key_or_id)
    if element is None:
        raise NotFound(f"No element {key_or_id[:64]}.")
    return element


def _owned_instance(request, instance_id, key_or_id=None):
    """The caller's instance (under the URL's element, if any), or 404."""
    instance = selectors.instance_get(user=request.user, instance_id=instance_id)
    element = _url_element(key_or_id)
    if element is not None and instance.element_key != element.key:
        raise NotFound(f"No instance with id {instance_id}.")
    instance.user = request.user  # already loaded: saves a query when it is represented
    return instance


# --- the OpenAPI document (drf-spectacular) -----------------------------------------------------

_TAG = ["instances"]
_INSTANCE_ID = path_parameter("instanceId", "The instance's id.", OpenApiTypes.INT)
_KEY_OR_ID = path_parameter("keyOrId", "An element's key (mixpanel) or id.")
_VALIDATE = OpenApiParameter(
    "validate",
    str,
    enum=["true", "false", "1", "0"],
    description="Check the credentials with one cheap vendor call first (default true).",
)
_ONE = {200: json_response(INSTANCE_SCHEMA), **error_responses(*PLATFORM_ERRORS, 404)}
# Writes with validate=true call the vendor: a refusal is a 400 with providerMessage, a vendor
# that fails or times out is a 502/504.
_WRITE = {**_ONE, **error_responses(*BODY_ERRORS, *VENDOR_ERRORS)}
_SEARCH = [
    OpenApiParameter("elementKey", str, description="Only instances of this element."),
    OpenApiParameter(
        "tags[]", {"type": "array", "items": {"type": "string"}}, description="Any of these tags."
    ),
    OpenApiParameter(
        "searchText",
        {"type": "string", "maxLength": MAX_SEARCH_TEXT},
        description="Part of the instance's name.",
    ),
]


def _instance_docs(**methods):
    """``extend_schema_view`` from ``method=(operationId, summary, extend_schema kwargs)``."""
    return extend_schema_view(
        **{
            method: extend_schema(tags=_TAG, operation_id=doc[0], summary=doc[1], **doc[2])
            for method, doc in methods.items()
        }
    )


@_instance_docs(
    get=(
        "listInstances",
        "Your instances, oldest first (paged)",
        {
            "parameters": [_KEY_OR_ID, *_SEARCH, *PAGE_PARAMETERS],
            "responses": {
                200: json_response({"type": "array", "items": INSTANCE_SCHEMA}),
                **error_responses(*PLATFORM_ERRORS, 404),
            },
        },
    ),
    post=(
        "createInstance",
        "Create an instance; the answer holds its token",
        {
            "parameters": [_KEY_OR_ID, _VALIDATE],
            "request": {"application/json": INSTANCE_CREATE_SCHEMA},
            "responses": _WRITE,
        },
    ),
)
class InstanceCollectionView(APIView):
    """``/instances`` and ``/elements/{keyOrId}/instances``."""

    def get(self, request, key_or_id=None):
        element = _url_element(key_or_id)
        size, after = page_params(request.query_params)
        element_key = element.key if element else request.query_params.get("elementKey")
        tags = request.query_params.getlist("tags[]") or request.query_params.getlist("tags")
        search_text = request.query_params.get("searchText")
        if search_text and len(search_text) > MAX_SEARCH_TEXT:
            raise ValidationFailed(
                errors=[{"field": "searchText", "message": f"at most {MAX_SEARCH_TEXT} characters"}]
            )
        instances = selectors.instance_list(
            user=request.user,
            tags=tags,
            search_text=search_text,
            element_key=element_key,
            after_id=after,
            limit=size,
        )
        return Response([_represent(i) for i in instances], headers=paged_headers(instances, size))

    def post(self, request, key_or_id=None):
        body = validate(
            INSTANCE_CREATE_SCHEMA if key_or_id is None else _CREATE_UNDER_ELEMENT, request.data
        )
        element = _element_from_body(body, _url_element(key_or_id))
        created = services.instance_create(
            user=request.user,
            element=element,
            name=body["name"],
            configuration=body["configuration"],
            tags=body.get("tags", []),
            trace_logging_enabled=body.get("traceLoggingEnabled", False),
            validate=_validate_flag(request),
        )
        created.instance.user = request.user
        return Response(
            _represent(
                created.instance,
                token=created.token,
                configuration=services.configuration_of(created.instance),
            )
        )


_CREATE_UNDER_ELEMENT = {
    **INSTANCE_CREATE_SCHEMA,
    "required": ["name", "configuration"],
}


@_instance_docs(
    get=(
        "getInstance",
        "One of your instances",
        {"parameters": [_KEY_OR_ID, _INSTANCE_ID], "responses": _ONE},
    ),
    patch=(
        "updateInstance",
        "Change some fields; a configuration is merged into the stored one",
        {
            "parameters": [_KEY_OR_ID, _INSTANCE_ID, _VALIDATE],
            "request": {"application/json": INSTANCE_PATCH_SCHEMA},
            "responses": _WRITE,
        },
    ),
    put=(
        "replaceInstance",
        "Replace the instance's fields (a masked secret keeps the stored value)",
        {
            "parameters": [_KEY_OR_ID, _INSTANCE_ID, _VALIDATE],
            "request": {"application/json": INSTANCE_PUT_SCHEMA},
            "responses": _WRITE,
        },
    ),
    delete=(
        "deleteInstance",
        "Delete the instance",
        {
            "parameters": [_KEY_OR_ID, _INSTANCE_ID],
            "responses": {
                200: json_response(
                    {
                        "type": "object",
                        "required": ["id", "deleted"],
                        "properties": {"id": {"type": "integer"}, "deleted": {"const": True}},
                    }
                ),
                **error_responses(*PLATFORM_ERRORS, 404),
            },
        },
    ),
)
class InstanceDetailView(APIView):
    def get(self, request, instance_id, key_or_id=None):
        return Response(_represent(_owned_instance(request, instance_id, key_or_id)))

    def patch(self, request, instance_id, key_or_id=None):
        instance = _owned_instance(request, instance_id, key_or_id)
        body = validate(INSTANCE_PATCH_SCHEMA, request.data)
        return Response(_represent(self._update(request, instance, body, replace=False)))

    def put(self, request, instance_id, key_or_id=None):
        instance = _owned_instance(request, instance_id, key_or_id)
        body = validate(INSTANCE_PUT_SCHEMA, request.data)
        body.setdefault("tags", [])
        body.setdefault("traceLoggingEnabled", False)
        return Response(_represent(self._update(request, instance, body, replace=True)))

    def delete(self, request, instance_id, key_or_id=None):
        instance = _owned_instance(request, instance_id, key_or_id)
        services.instance_delete(instance=instance)
        return Response({"id": int(instance_id), "deleted": True})

    @staticmethod
    def _update(request, instance, body, *, replace):
        if "element" in body:
            element = _element_from_body(body)
            if element.key != instance.element_key:
                raise ValidationFailed(
                    "An instance cannot change its element.",
                    errors=[{"field": "element", "message": "cannot change"}],
                )
        return services.instance_update(
            instance=instance,
            name=body.get("name"),
            configuration=body.get("configuration"),
            tags=body.get("tags"),
            trace_logging_enabled=body.get("traceLoggingEnabled"),
            replace_configuration=replace,
            validate=_validate_flag(request),
        )


@_instance_docs(
    put=(
        "enableInstance",
        "Enable the instance",
        {"parameters": [_INSTANCE_ID], "request": None, "responses": _ONE},
    ),
    delete=(
        "disableInstance",
        "Disable the instance: its element calls are 403 until it is enabled",
        {"parameters": [_INSTANCE_ID], "responses": _ONE},
    ),
)
class InstanceEnabledView(APIView):
    def put(self, request, instance_id):
        instance = _owned_instance(request, instance_id)
        return Response(_represent(services.instance_set_enabled(instance=instance, enabled=True)))

    def delete(self, request, instance_id):
        instance = _owned_instance(request, instance_id)
        return Response(_represent(services.instance_set_enabled(instance=instance, enabled=False)))


@_instance_docs(
    put=(
        "rotateInstanceToken",
        "Issue a new token; the old one stops working at once",
        {"parameters": [_INSTANCE_ID], "request": None, "responses": _ONE},
    )
)
class InstanceTokenView(APIView):
    def put(self, request, instance_id):
        instance = _owned_instance(request, instance_id)
        token = services.instance_rotate_token(instance=instance)
        return Response(_represent(instance, token=token))
