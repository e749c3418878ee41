from django.urls import re_path

from events import api

# Under /elements/api-v2/ ; before the instances' own (``instances/events`` is no instance id).
urlpatterns = [
    re_path(r"^instances/events/?$", api.EventListView.as_view()),
    re_path(r"^instances/events/(?P<event_id>[^/]+)/?$", api.EventDetailView.as_view()),
    re_path(
        r"^instances/events/(?P<event_id>[^/]+)/redeliver/?$", api.EventRedeliverView.as_view()
    ),
    re_path(r"^instances/(?P<instance_id>[^/]+)/events/?$", api.InstanceEventListView.as_view()),
    re_path(
        r"^instances/(?P<instance_id>[^/]+)/events/(?P<event_id>[^/]+)/?$",
        api.InstanceEventDetailView.as_view(),
    ),
]
