from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from bulk.urls import urlpatterns as bulk_urlpatterns
from elements.urls import (
    catalog_urlpatterns,
    hub_resource_urlpatterns,
    operation_urlpatterns,
    resource_urlpatterns,
)
from events.urls import urlpatterns as event_urlpatterns
from instances.urls import urlpatterns as instance_urlpatterns
from platform_core.metrics import metrics_view
from platform_core.openapi import PlatformSchemaView
from transformations.urls import urlpatterns as transformation_urlpatterns
from usage.urls import urlpatterns as usage_urlpatterns

# The API reference: the OpenAPI document and two pages that render it (no auth).
reference_urlpatterns = [
    path("openapi.json", PlatformSchemaView.as_view(), name="openapi-document"),
    path("api-docs/", SpectacularSwaggerSplitView.as_view(url_name="openapi-document")),
    path(
        "redoc/",
        SpectacularRedocView.as_view(
            url_name="openapi-document", template_name="platform_core/redoc.html"
        ),
    ),
]

# Bulk before the hub's resource calls (both live under hubs/{hub}/); resource_urlpatterns is a
# catch-all: it stays last.
api_v2 = (
    bulk_urlpatterns
    + hub_resource_urlpatterns
    + event_urlpatterns
    + instance_urlpatterns
    + transformation_urlpatterns
    + usage_urlpatterns
    + reference_urlpatterns
    + catalog_urlpatterns
    + resource_urlpatterns
)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("elements/api-v2/", include(api_v2)),
    path("metrics", metrics_view),
    *operation_urlpatterns,
]

handler400 = "platform_core.exceptions.handler400"
handler403 = "platform_core.exceptions.handler403"
handler404 = "platform_core.exceptions.handler404"
handler500 = "platform_core.exceptions.handler500"
