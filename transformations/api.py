"""Object definition and transformation endpoints (contract §9), header User + Organization.
Views only translate: services write, selectors read."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from elements.framework.registry import element_by_key, element_by_key_or_id
from instances.selectors import instance_get
from platform_core.exceptions import NotFound
from platform_core.openapi import PLATFORM_ERRORS, error_responses, json_response, path_parameter
from transformations import schemas, selectors, services
from transformations.representations import (
    definition_representation,
    transformation_representation,
)

_NAME = path_parameter("name", "The object's name (e.g. customer).")
_INSTANCE_ID = path_parameter("instanceId", "The instance's id.", OpenApiTypes.INT)
_KEY_OR_ID = path_parameter("keyOrId", "An element's key (mixpanel) or id.")
_DELETED = {"type": "object", "properties": {"deleted": {"type": "integer"}}}


def _docs(operation_id, summary, parameters, response, *, request=None, errors=(404,)):
    return extend_schema(
        tags=["transformations"],
        operation_id=operation_id,
        summary=summary,
        parameters=parameters,
        request={"application/json": request} if request else None,
        responses={200: json_response(response), **error_responses(*PLATFORM_ERRORS, *errors)},
    )


def _documented(docs, method):
    """``method`` under its own function object, so that each view's documentation (which
    ``extend_schema`` stores on the function) stays its own."""

    def documented(self, request, *args, **kwargs):
        return method(self, request, *args, **kwargs)

    return docs(documented)


def _element(key_or_id: str):
    element = element_by_key_or_id(key_or_id)
    if element is None:
        raise NotFound(f"No element {key_or_id[:64]}.")
    return element


def _instance(request, instance_id):
    """The caller's instance, or 404 exactly as for one that does not exist."""
    instance = instance_get(user=request.user, instance_id=instance_id)
    instance.user = request.user
    return instance


# --- definitions -------------------------------------------------------------------------------


class OrganizationDefinitionMapView(APIView):
    @_docs(
        "getOrganizationObjectDefinitions",
        "Your organization's object definitions, by name",
        [],
        schemas.DEFINITION_MAP,
        errors=(),
    )
    def get(self, request):
        found = selectors.definition_list(organization=request.user.organization)
        return Response({d.name: definition_representation(d) for d in found})


class InstanceDefinitionMapView(APIView):
    @_docs(
        "getInstanceObjectDefinitions",
        "An instance's own object definitions, by name",
        [_INSTANCE_ID],
        schemas.DEFINITION_MAP,
    )
    def get(self, request, instance_id):
        instance = _instance(request, instance_id)
        found = selectors.definition_list(organization=request.user.organization, instance=instance)
        return Response({d.name: definition_representation(d) for d in found})


class _DefinitionView(APIView):
    def scope(self, request, **route) -> dict:
        raise NotImplementedError

    def get(self, request, name, **route):
        return Response(
            definition_representation(
                selectors.definition_get(**self.scope(request, **route), name=name)
            )
        )

    def post(self, request, name, **route):
        definition = services.definition_create(
            **self.scope(request, **route), name=name, body=request.data
        )
        return Response(definition_representation(definition))

    def put(self, request, name, **route):
        definition = services.definition_replace(
            **self.scope(request, **route), name=name, body=request.data
        )
        return Response(definition_representation(definition))

    def delete(self, request, name, **route):
        services.definition_delete(**self.scope(request, **route), name=name)
        return Response({"deleted": 1})


def _definition_docs(level: str, parameters: list):
    prefix = "Organization" if level == "organization" else "Instance"
    one = schemas.DEFINITION
    return {
        "get": _docs(
            f"get{prefix}ObjectDefinition", f"One {level} object definition", parameters, one
        ),
        "post": _docs(
            f"create{prefix}ObjectDefinition",
            f"Define an object at {level} level (409 if it exists)",
            parameters,
            one,
            request=schemas.DEFINITION_WRITE,
            errors=(404, 409),
        ),
        "put": _docs(
            f"replace{prefix}ObjectDefinition",
            f"Replace an {level} object definition's fields",
            parameters,
            one,
            request=schemas.DEFINITION_WRITE,
        ),
        "delete": _docs(
            f"delete{prefix}ObjectDefinition",
            f"Delete an {level} object definition (409 while a transformation needs it)",
            parameters,
            _DELETED,
            errors=(404, 409),
        ),
    }


_ORG_DEFINITION = _definition_docs("organization", [_NAME])
_INSTANCE_DEFINITION = _definition_docs("instance", [_INSTANCE_ID, _NAME])


class OrganizationDefinitionView(_DefinitionView):
    def scope(self, request):
        return {"organization": request.user.organization}

    get = _documented(_ORG_DEFINITION["get"], _DefinitionView.get)
    post = _documented(_ORG_DEFINITION["post"], _DefinitionView.post)
    put = _documented(_ORG_DEFINITION["put"], _DefinitionView.put)
    delete = _documented(_ORG_DEFINITION["delete"], _DefinitionView.delete)


class InstanceDefinitionView(_DefinitionView):
    def scope(self, request, instance_id):
        return {
            "organization": request.user.organization,
            "instance": _instance(request, instance_id),
        }

    get = _documented(_INSTANCE_DEFINITION["get"], _DefinitionView.get)
    post = _documented(_INSTANCE_DEFINITION["post"], _DefinitionView.post)
    put = _documented(_INSTANCE_DEFINITION["put"], _DefinitionView.put)
    delete = _documented(_INSTANCE_DEFINITION["delete"], _DefinitionView.delete)


# --- transformations ---------------------------------------------------------------------------


class _TransformationScope:
    def scope(self, request, **route) -> tuple[dict, object]:
        """The selector/service keyword arguments of this level, and the element."""
        if "instance_id" in route:
            instance = _instance(request, route["instance_id"])
            element = element_by_key(instance.element_key)
            if element is None:
                raise NotFound(f"The {instance.element_key} element is no longer installed.")
            return {"organization": request.user.organization, "instance": instance}, element
        element = _element(route["key_or_id"])
        return {"organization": request.user.organization, "element_key": element.key}, element


class _TransformationSetView(_TransformationScope, APIView):
    def get(self, request, **route):
        scope, _ = self.scope(request, **route)
        found = selectors.transformation_list(**scope)
        return Response({t.object_name: transformation_representation(t) for t in found})

    def delete(self, request, **route):
        scope, _ = self.scope(request, **route)
        return Response({"deleted": services.transformations_delete_all(**scope)})


class _TransformationView(_TransformationScope, APIView):
    def get(self, request, name, **route):
        scope, _ = self.scope(request, **route)
        found = selectors.transformation_get(**scope, name=name)
        return Response(transformation_representation(found))

    def post(self, request, name, **route):
        scope, element = self.scope(request, **route)
        scope.pop("element_key", None)
        created = services.transformation_create(
            **scope, element=element, name=name, body=request.data
        )
        return Response(transformation_representation(created))

    def put(self, request, name, **route):
        scope, element = self.scope(request, **route)
        scope.pop("element_key", None)
        replaced = services.transformation_replace(
            **scope, element=element, name=name, body=request.data
        )
        return Response(transformation_representation(replaced))

    def delete(self, request, name, **route):
        scope, _ = self.scope(request, **route)
        services.transformation_delete(**scope, name=name)
        return Response({"deleted": 1})


def _set_docs(level: str, parameters: list):
    prefix = "Organization" if level == "organization" else "Instance"
    return {
        "get": _docs(
            f"get{prefix}Transformations",
            f"Every {level}-level transformation, by object name",
            parameters,
            schemas.TRANSFORMATION_MAP,
        ),
        "delete": _docs(
            f"delete{prefix}Transformations",
            f"Delete every {level}-level transformation (404 if there are none)",
            parameters,
            _DELETED,
        ),
    }


def _one_docs(level: str, parameters: list):
    prefix = "Organization" if level == "organization" else "Instance"
    one = schemas.TRANSFORMATION
    write = schemas.TRANSFORMATION_WRITE
    return {
        "get": _docs(
            f"get{prefix}Transformation", f"One {level}-level transformation", parameters, one
        ),
        "post": _docs(
            f"create{prefix}Transformation",
            f"Map an object onto the element at {level} level (definition first; no scripts)",
            parameters,
            one,
            request=write,
            errors=(404, 409),
        ),
        "put": _docs(
            f"replace{prefix}Transformation",
            f"Replace an {level}-level transformation",
            parameters,
            one,
            request=write,
        ),
        "delete": _docs(
            f"delete{prefix}Transformation",
            f"Delete an {level}-level transformation",
            parameters,
            _DELETED,
        ),
    }


_ORG_SET = _set_docs("organization", [_KEY_OR_ID])
_INSTANCE_SET = _set_docs("instance", [_INSTANCE_ID])
_ORG_ONE = _one_docs("organization", [_KEY_OR_ID, _NAME])
_INSTANCE_ONE = _one_docs("instance", [_INSTANCE_ID, _NAME])


class OrganizationTransformationSetView(_TransformationSetView):
    get = _documented(_ORG_SET["get"], _TransformationSetView.get)
    delete = _documented(_ORG_SET["delete"], _TransformationSetView.delete)


class InstanceTransformationSetView(_TransformationSetView):
    get = _documented(_INSTANCE_SET["get"], _TransformationSetView.get)
    delete = _documented(_INSTANCE_SET["delete"], _TransformationSetView.delete)


class OrganizationTransformationView(_TransformationView):
    get = _documented(_ORG_ONE["get"], _TransformationView.get)
    post = _documented(_ORG_ONE["post"], _TransformationView.post)
    put = _documented(_ORG_ONE["put"], _TransformationView.put)
    delete = _documented(_ORG_ONE["delete"], _TransformationView.delete)


class InstanceTransformationView(_TransformationView):
    get = _documented(_INSTANCE_ONE["get"], _TransformationView.get)
    post = _documented(_INSTANCE_ONE["post"], _TransformationView.post)
    put = _documented(_INSTANCE_ONE["put"], _TransformationView.put)
    delete = _documented(_INSTANCE_ONE["delete"], _TransformationView.delete)
