from django.urls import path, re_path

from elements import api

# Under /elements/api-v2/
catalog_urlpatterns = [
    path("elements", api.ElementListView.as_view()),
    path("elements/keys", api.ElementKeysView.as_view()),
    path("elements/<str:key_or_id>", api.ElementDetailView.as_view()),
    path("elements/<str:key_or_id>/resources", api.ElementResourcesView.as_view()),
    path("elements/<str:key_or_id>/metadata", api.ElementMetadataView.as_view()),
    path("elements/<str:key_or_id>/docs", api.ElementDocsView.as_view()),
]

# Under /elements/api-v2/. Resource calls under /hubs/{hub}/ share that prefix with nothing but
# bulk, so they are matched right after bulk's routes, ahead of every other platform route:
# element calls are the hot path, and each pattern tried first costs them time.
hub_resource_urlpatterns = [
    re_path(r"^hubs/(?P<hub>[^/]+)/(?P<resource_path>.+)$", api.ResourceCallView.as_view()),
]
# After every platform route: anything else is a resource path without the hub.
resource_urlpatterns = [
    re_path(r"^(?P<resource_path>.+)$", api.ResourceCallView.as_view()),
]

# At the site root (operation style, seed 000).
operation_urlpatterns = [
    re_path(
        r"^(?P<element_key>[a-z0-9_-]+)/(?P<operation>[A-Za-z0-9_]+)/(?P<instance_id>[^/]+)/?$",
        api.OperationCallView.as_view(),
    ),
    re_path(
        r"^(?P<element_key>[a-z0-9_-]+)/(?P<operation>[A-Za-z0-9_]+)/?$",
        api.OperationSchemaView.as_view(),
    ),
]
