"""Element endpoints: the catalog (contract §4) and element calls in both URL styles (§5)."""

from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from elements import serializers
from elements.framework import dispatch
from elements.framework.openapi import openapi_document, without_location_hints
from elements.framework.registry import all_elements, element_by_key, element_by_key_or_id
from instances.services import configuration_of
from platform_core.authentication import ElementAuthentication
from platform_core.exceptions import NotFound
from platform_core.permissions import InstanceEnabled
from usage.views import UsageLoggedMixin

INSTANCE_HEADER = "Elements-Element-Instance-Id"


def _element(key_or_id: str):
    element = element_by_key_or_id(key_or_id)
    if element is None:
        raise NotFound(f"No element {key_or_id[:64]}.")
    return element


# --- catalog --------------------------------------------------------------------------------


class ElementListView(APIView):
    def get(self, request):
        return Response([serializers.element_summary(e) for e in all_elements()])


class ElementKeysView(APIView):
    def get(self, request):
        return Response([e.key for e in all_elements()])


class ElementDetailView(APIView):
    def get(self, request, key_or_id):
        return Response(serializers.element_detail(_element(key_or_id)))


class ElementResourcesView(APIView):
    def get(self, request, key_or_id):
        element = _element(key_or_id)
        return Response(
            [serializers.resource_representation(element, op) for op in element.operations]
        )


class ElementMetadataView(APIView):
    def get(self, request, key_or_id):
        return Response(serializers.element_metadata(_element(key_or_id)))


class ElementDocsView(APIView):
    def get(self, request, key_or_id):
        return Response(openapi_document(_element(key_or_id)))


# --- element calls --------------------------------------------------------------------------


class ElementCallView(UsageLoggedMixin, APIView):
    """The shared tail of both URL styles: inputs, the operation, the response (and, through
    the mixin, the usage log)."""

    authentication_classes = [ElementAuthentication]
    permission_classes = [IsAuthenticated, InstanceEnabled]

    def run(self, request, op, path_params):
        instance = request.auth.instance
        element = element_by_key(instance.element_key)
        self.operation = op
        self.inputs = dispatch.assemble_inputs(
            op,
            query={k: request.query_params.getlist(k) for k in request.query_params},
            body=dispatch.parse_body(request.body, content_type=request.content_type),
            path_params=path_params,
        )
        self.configuration = configuration_of(instance)
        result = dispatch.run_operation(
            element,
            op,
            instance_id=instance.pk,
            configuration=self.configuration,
            inputs=self.inputs,
            request_id=request.request_id,
        )
        self.vendor_status = result.vendor_status
        headers = {INSTANCE_HEADER: str(instance.pk), **result.headers}
        return Response(result.body, headers=headers)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        auth = getattr(self.request, "auth", None)
        if auth is not None:
            response[INSTANCE_HEADER] = str(auth.instance.pk)
        return response


class ResourceCallView(ElementCallView):
    """``/hubs/{hub}/{resource...}`` and the same without ``hubs/{hub}`` (the hub is ignored)."""

    def handle(self, request, resource_path, hub=None):
        element = element_by_key(request.auth.instance.element_key)
        op, path_params = dispatch.match_resource(element, request.method, resource_path)
        return self.run(request, op, path_params)

    get = post = put = patch = delete = handle


class OperationCallView(ElementCallView):
    """``/{elementKey}/{operation}/{instanceId}``: the token must belong to ``instanceId``."""

    def handle(self, request, element_key, operation, instance_id):
        instance = request.auth.instance
        element = element_by_key(element_key)
        op = element.named_operation(operation) if element else None
        if op is None or str(instance.pk) != instance_id or instance.element_key != element_key:
            raise NotFound(
                f"No operation {element_key[:64]}/{operation[:64]} for instance {instance_id[:20]}."
            )
        if op.method != request.method:
            raise dispatch.MethodNotAllowed(
                f"{operation} takes {op.method}.", headers={"Allow": op.method}
            )
        return self.run(request, op, {})

    get = post = put = patch = delete = handle


class OperationSchemaView(APIView):
    """``GET /{elementKey}/{operation}``: the operation's input and output JSON Schemas."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request, element_key, operation):
        element = element_by_key(element_key)
        op = element.named_operation(operation) if element else None
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
