from django.contrib import admin
from django.urls import include, path

from bulk.urls import urlpatterns as bulk_urlpatterns
from elements.urls import (
    catalog_urlpatterns,
    hub_resource_urlpatterns,
    operation_urlpatterns,
    resource_urlpatterns,
)
from instances.urls import urlpatterns as instance_urlpatterns
from platform_core.metrics import metrics_view
from usage.urls import urlpatterns as usage_urlpatterns

# Bulk before the hub's resource calls (both live under hubs/{hub}/); resource_urlpatterns is a
# catch-all: it stays last.
api_v2 = (
    bulk_urlpatterns
    + hub_resource_urlpatterns
    + instance_urlpatterns
    + usage_urlpatterns
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
