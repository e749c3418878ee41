from django.urls import re_path

from bulk import api

# Under /elements/api-v2/, before the resource catch-all; each also under hubs/{hub}/.
_HUB = r"^(?:hubs/[^/]+/)?bulk/"

urlpatterns = [
    re_path(_HUB + r"query/?$", api.BulkQueryView.as_view()),
    re_path(_HUB + r"jobs/?$", api.BulkJobsView.as_view()),
    re_path(_HUB + r"(?P<job_id>[^/]+)/status/?$", api.BulkStatusView.as_view()),
    re_path(_HUB + r"(?P<job_id>[^/]+)/errors/?$", api.BulkErrorsView.as_view()),
    re_path(_HUB + r"(?P<job_id>[^/]+)/cancel/?$", api.BulkCancelView.as_view()),
    re_path(_HUB + r"(?P<job_id>[^/]+)/(?P<object_name>[^/]+)/?$", api.BulkResultView.as_view()),
]
