"""The events API of contract §10, header ``User`` + ``Organization``, scoped to the caller:
another user's event or instance is a 404, as one that does not exist."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors, services
from events.models import Event
from events.representations import event_representation
from instances.selectors import instance_get
from platform_core.exceptions import NotFound, ValidationFailed
from platform_core.ids import row_id
from platform_core.openapi import (
    PAGE_PARAMETERS,
    PLATFORM_ERRORS,
    component,
    error_responses,
    json_response,
    path_parameter,
)
from platform_core.pagination import page_params, paged_headers

DELIVERY_SCHEMA = {
    "type": "object",
    "properties": {
        "attempt": {"type": "integer"},
        "date": {"type": "string", "format": "date-time"},
        "status": {"enum": ["DELIVERED", "RETRY", "FAILED"]},
        "responseStatus": {"type": ["integer", "null"]},
    },
}
EVENT_SCHEMA = component(
    "Event",
    {
        "type": "object",
        "required": ["id", "eventDate", "status", "objectType", "eventType", "objectId"],
        "properties": {
            "id": {"type": "string"},
            "instanceId": {"type": "integer"},
            "eventDate": {"type": "string", "format": "date-time"},
            "createdDate": {"type": "string", "format": "date-time"},
            "status": {"enum": list(Event.Status.values)},
            "objectType": {"type": "string"},
            "eventType": {"enum": ["CREATED", "UPDATED", "DELETED"]},
            "objectId": {"type": "string"},
            "notificationId": {
                "type": ["string", "null"],
                "description": "message.eventId of the notification that carries it.",
            },
            "deliveries": {"type": "array", "items": DELIVERY_SCHEMA},
        },
    },
)
LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=list(Event.Status.values)),
    OpenApiParameter("objectType", str),
    *PAGE_PARAMETERS,
]
EVENT_ID = path_parameter("eventId", "The event's id.")
INSTANCE_ID = path_parameter("instanceId", "The instance's id.", OpenApiTypes.INT)


def _event_id(raw) -> int:
    value = row_id(raw)
    if value is None:
        raise NotFound(f"No event {str(raw)[:40]}.")
    return value


def _list(request, instance_id=None):
    size, after = page_params(request.query_params)
    status = request.query_params.get("status") or None
    if status is not None and status not in Event.Status.values:
        raise ValidationFailed(
            errors=[{"field": "status", "message": f"one of {', '.join(Event.Status.values)}"}]
        )
    events = selectors.event_list(
        user_id=request.user.pk,
        instance_id=instance_id,
        status=status,
        object_type=request.query_params.get("objectType") or None,
        after_id=after,
        limit=size,
    )
    return Response([event_representation(e) for e in events], headers=paged_headers(events, size))


def _get(request, event_id, instance_id=None) -> Event:
    event = selectors.event_get(
        user_id=request.user.pk, event_id=_event_id(event_id), instance_id=instance_id
    )
    if event is None:
        raise NotFound(f"No event {str(event_id)[:40]}.")
    return event


LIST_DOCS = {
    "tags": ["events"],
    "parameters": LIST_PARAMETERS,
    "responses": {
        200: json_response({"type": "array", "items": EVENT_SCHEMA}),
        **error_responses(*PLATFORM_ERRORS),
    },
}


class EventListView(APIView):
    @extend_schema(
        operation_id="listEvents", summary="Events of all your instances (paged)", **LIST_DOCS
    )
    def get(self, request):
        return _list(request)


class InstanceEventListView(APIView):
    @extend_schema(
        operation_id="listInstanceEvents",
        summary="Events of one instance (paged)",
        **{**LIST_DOCS, "parameters": [INSTANCE_ID, *LIST_PARAMETERS]},
    )
    def get(self, request, instance_id):
        instance = instance_get(user=request.user, instance_id=instance_id)
        return _list(request, instance_id=instance.pk)


ONE_DOCS = {
    "tags": ["events"],
    "responses": {200: json_response(EVENT_SCHEMA), **error_responses(*PLATFORM_ERRORS, 404)},
}


class EventDetailView(APIView):
    @extend_schema(operation_id="getEvent", summary="One event", parameters=[EVENT_ID], **ONE_DOCS)
    def get(self, request, event_id):
        return Response(event_representation(_get(request, event_id)))


class InstanceEventDetailView(APIView):
    @extend_schema(
        operation_id="getInstanceEvent",
        summary="One event of one instance",
        parameters=[INSTANCE_ID, EVENT_ID],
        **ONE_DOCS,
    )
    def get(self, request, instance_id, event_id):
        instance = instance_get(user=request.user, instance_id=instance_id)
        return Response(event_representation(_get(request, event_id, instance_id=instance.pk)))


class EventRedeliverView(APIView):
    @extend_schema(
        operation_id="redeliverEvent",
        summary="Send the notification that carries the event again",
        parameters=[EVENT_ID],
        request=None,
        **ONE_DOCS,
    )
    def put(self, request, event_id):
        event = services.event_redeliver(event=_get(request, event_id))
        return Response(event_representation(_get(request, event.pk)))
