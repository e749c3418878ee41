from django.urls import re_path

from usage import api

# Under /elements/api-v2/
urlpatterns = [
    re_path(r"^usage/?$", api.UsageListView.as_view()),
    re_path(r"^usage/(?P<request_id>[^/]+)/?$", api.UsageDetailView.as_view()),
]
