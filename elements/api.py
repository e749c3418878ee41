"""Element endpoints: the catalog (contract §4) and element calls in both URL styles (§5)."""

import time
from abc import ABC, abstractmethod

from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from elements import transformed
from elements.framework import catalog, dispatch
from elements.framework.configuration import redact
from elements.framework.definition import Operation, Result
from elements.framework.openapi import openapi_document, without_location_hints
from elements.framework.registry import all_elements, element_by_key, element_by_key_or_id
from elements.framework.vendor import VendorGarbage
from instances.authentication import authenticate_element_call
from instances.services import configuration_of
from platform_core import nesting
from platform_core.exceptions import NotFound, exception_handler
from platform_core.openapi import PLATFORM_ERRORS, error_responses, json_response, path_parameter
from platform_core.permissions import require_enabled
from transformations.selectors import definition_list, transformation_list
from usage.recording import CallLog, record_element_call

INSTANCE_HEADER = "Elements-Element-Instance-Id"


def _element(key_or_id: str):
    element = element_by_key_or_id(key_or_id)
    if element is None:
        raise NotFound(f"No element {key_or_id[:64]}.")
    return element


# --- catalog --------------------------------------------------------------------------------

_KEY_OR_ID = path_parameter("keyOrId", "An element's key (mixpanel) or id.")


def _catalog_docs(operation_id: str, summary: str, schema: dict, *, one_element: bool = True):
    """``extend_schema`` for a catalog read (header User + Organization)."""
    return extend_schema(
        tags=["catalog"],
        operation_id=operation_id,
        summary=summary,
        parameters=[_KEY_OR_ID] if one_element else [],
        responses={
            200: json_response(schema),
            **error_responses(*PLATFORM_ERRORS, *((404,) if one_element else ())),
        },
    )


class ElementListView(APIView):
    @_catalog_docs(
        "listElements",
        "Every element",
        {"type": "array", "items": catalog.ELEMENT_SUMMARY_SCHEMA},
        one_element=False,
    )
    def get(self, request):
        return Response([catalog.element_summary(e) for e in all_elements()])


class ElementKeysView(APIView):
    @_catalog_docs(
        "listElementKeys",
        "Every element's key",
        {"type": "array", "items": {"type": "string"}},
        one_element=False,
    )
    def get(self, request):
        return Response([e.key for e in all_elements()])


class ElementDetailView(APIView):
    @_catalog_docs(
        "getElement",
        "An element: its resources and configuration fields",
        catalog.ELEMENT_DETAIL_SCHEMA,
    )
    def get(self, request, key_or_id):
        return Response(catalog.element_detail(_element(key_or_id)))


class ElementResourcesView(APIView):
    @_catalog_docs(
        "getElementResources",
        "An element's operations",
        {"type": "array", "items": catalog.RESOURCE_SCHEMA},
    )
    def get(self, request, key_or_id):
        element = _element(key_or_id)
        return Response([catalog.resource_representation(element, op) for op in element.operations])


class ElementMetadataView(APIView):
    @_catalog_docs(
        "getElementMetadata",
        "An element's objects and what they support",
        catalog.ELEMENT_METADATA_SCHEMA,
    )
    def get(self, request, key_or_id):
        return Response(catalog.element_metadata(_element(key_or_id)))


class ElementDocsView(APIView):
    @_catalog_docs(
        "getElementDocs",
        "An element's own OpenAPI 3.1 document (its operations alone)",
        {"type": "object", "required": ["openapi", "paths"]},
    )
    def get(self, request, key_or_id):
        element = _element(key_or_id)
        organization = request.user.organization
        return Response(
            transformed.with_transformed_paths(
                openapi_document(element),
                element,
                transformation_list(organization=organization, element_key=element.key),
                {d.name: d.fields for d in definition_list(organization=organization)},
            )
        )


# --- element calls --------------------------------------------------------------------------


def _answer_bytes(body) -> bytes:
    try:
        return nesting.encode(body)
    except RecursionError:  # only a vendor's answer can be this deep: bodies sent are bounded
        raise VendorGarbage("The vendor's answer is nested too deeply to pass on.") from None


def _named_operation(element_key: str, name: str) -> Operation | None:
    element = element_by_key(element_key)
    return element.named_operation(name) if element else None


@method_decorator(csrf_exempt, name="dispatch")  # token-authenticated: no cookies, no CSRF
class ElementCallView(ABC, View):
    """The shared tail of both URL styles: authentication, inputs, the operation, the response
    and the usage log.

    A plain Django view, not a DRF one: element calls are the platform's hot path, and DRF's
    request wrapping, negotiation and rendering cost 0.3-0.5 ms a call on the benchmark
    machine (``bench.proxy_overhead``) while adding nothing here. Authentication, the
    disabled-instance rule and the error shape are the same code the DRF views use
    (``instances.authentication``, ``platform_core.permissions``,
    ``exceptions.exception_handler``), and
    the usage log gets what ``UsageLoggedMixin`` gives it from the bulk views.
    """

    names_nothing = False

    def dispatch(self, request, **route):
        started = time.perf_counter()
        call = CallLog()
        auth = None
        try:
            # A path that names nothing is 404 whatever the request carries: an element token
            # is asked for only where an element call could have been meant.
            self.check_named(request, **route)
            auth = authenticate_element_call(request)
            # A refusal of an authenticated call is the instance's: it is logged (below).
            require_enabled(auth.instance)
            op, path_params = self.operation(request, auth.instance, **route)
            call.operation = op
            body, headers = self.run(request, auth.instance, op, path_params, call)
            response = HttpResponse(
                _answer_bytes(body), content_type="application/json", headers=headers
            )
            call.response_body = body
        except Exception as exc:
            if getattr(exc, "provider_message", None) and call.configuration is not None:
                # A vendor's error may echo the credentials it was sent.
                exc.provider_message = redact(
                    element_by_key(auth.instance.element_key),
                    exc.provider_message,
                    call.configuration,
                )
            response = exception_handler(exc, {"request": request})
            if response is None:
                raise  # a bug: the middleware answers 500 in the error shape and logs it
            call.vendor_status = getattr(exc, "provider_status", None)
        # Calls that never authenticated belong to no one's log, nor do paths that turned out
        # to name nothing of the instance's (ResourceCallView: a transformed object it lacks).
        if auth is not None and not self.names_nothing:
            response[INSTANCE_HEADER] = str(auth.instance.pk)
            record_element_call(request, auth.instance, call, response.status_code, started)
        return response

    @abstractmethod
    def check_named(self, request, **route) -> None:
        """404 unless the URL names an operation of some element (before authentication)."""

    @abstractmethod
    def operation(self, request, instance, **route) -> tuple[Operation, dict]:
        """The operation the URL names, and its path parameters (or 404/405)."""

    def run(self, request, instance, op, path_params, call) -> tuple[object, dict]:
        call.inputs = dispatch.request_inputs(
            op,
            raw=request.body,
            content_type=request.META.get("CONTENT_TYPE", ""),  # with its charset
            query={k: request.GET.getlist(k) for k in request.GET},
            path_params=path_params,
            may_stay_raw=not instance.trace_logging_enabled,
        )
        result = self.run_inputs(request, instance, op, call)
        return result.body, result.headers

    def run_inputs(self, request, instance, op, call) -> Result:
        """Runs ``op`` on ``call.inputs`` with the instance's configuration; notes the
        configuration and the vendor's status on ``call``."""
        call.configuration = configuration_of(instance)
        result = dispatch.run_operation(
            element_by_key(instance.element_key),
            op,
            instance_id=instance.pk,
            configuration=call.configuration,
            inputs=call.inputs,
            request_id=request.request_id,
        )
        call.vendor_status = result.vendor_status
        return result


class ResourceCallView(ElementCallView):
    """``/hubs/{hub}/{resource...}`` and the same without ``hubs/{hub}`` (the hub is ignored).
    A path that names no resource of the element may name a transformed object of the
    instance's (``elements/transformed.py``)."""

    mapping = None  # the transformation this call goes through, if any

    def check_named(self, request, resource_path, hub=None):
        if not dispatch.names_a_resource(resource_path) and not transformed.may_be_transformed(
            request, resource_path
        ):
            raise NotFound(f"No such endpoint: {request.path[:200]}")

    def operation(self, request, instance, resource_path, hub=None):
        element = element_by_key(instance.element_key)
        if not dispatch.names_a_resource(resource_path):
            found = transformed.resolve(instance, element, request.method, resource_path)
            if found is None:
                self.names_nothing = True
                raise NotFound(f"No such endpoint: {request.path[:200]}")
            op, path_params, self.mapping = found
            return op, path_params
        return dispatch.match_resource(element, request.method, resource_path)

    def run(self, request, instance, op, path_params, call):
        if self.mapping is not None:
            return self.run_transformed(request, instance, op, path_params, call)
        if op.id == "getObjectMetadata":
            element = element_by_key(instance.element_key)
            metadata = transformed.transformed_metadata(instance, element, path_params["name"])
            if metadata is not None:
                return metadata, {}
        body, headers = super().run(request, instance, op, path_params, call)
        if op.id == "getObjects":
            body = transformed.with_transformed_objects(instance, body)
        return body, headers

    def run_transformed(self, request, instance, op, path_params, call):
        call.inputs = transformed.vendor_inputs(
            self.mapping,
            op,
            raw=request.body,
            content_type=request.content_type,
            query={k: request.GET.getlist(k) for k in request.GET},
            path_params=path_params,
        )
        result = self.run_inputs(request, instance, op, call)
        return transformed.tenant_body(self.mapping, result.body), result.headers


class OperationCallView(ElementCallView):
    """``/{elementKey}/{operation}/{instanceId}``: the token must belong to ``instanceId``."""

    def check_named(self, request, element_key, operation, instance_id):
        if _named_operation(element_key, operation) is None:
            raise NotFound(f"No operation {element_key[:64]}/{operation[:64]}.")

    def operation(self, request, instance, element_key, operation, instance_id):
        op = _named_operation(element_key, operation)
        if op is None or str(instance.pk) != instance_id or instance.element_key != element_key:
            raise NotFound(
                f"No operation {element_key[:64]}/{operation[:64]} for instance {instance_id[:20]}."
            )
        if op.method != request.method:
            raise dispatch.MethodNotAllowed(
                f"{operation} takes {op.method}.", headers={"Allow": op.method}
            )
        return op, {}


class OperationSchemaView(APIView):
    """``GET /{elementKey}/{operation}``: the operation's input and output JSON Schemas."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["catalog"],
        operation_id="getOperationSchema",
        summary="An operation-style operation's input and output JSON Schemas (no auth)",
        parameters=[
            path_parameter("elementKey", "An element's key."),
            path_parameter("operation", "An operation's name, e.g. query_profiles."),
        ],
        responses={
            200: json_response(
                {
                    "type": "object",
                    "required": ["operation", "method", "input_schema", "output_schema"],
                    "properties": {
                        "operation": {"type": "string"},
                        "method": {"type": "string"},
                        "input_schema": {"type": "object"},
                        "output_schema": {"type": "object"},
                    },
                }
            ),
            **error_responses(404),
        },
    )
    def get(self, request, element_key, operation):
        op = _named_operation(element_key, operation)
        if op is None:
            raise NotFound(f"No operation {element_key[:64]}/{operation[:64]}.")
        return Response(
            {
                "operation": op.name,
                "method": op.method,
                "input_schema": without_location_hints(op.input_schema),
                "output_schema": without_location_hints(op.output_schema),
            }
        )
