from django.urls import path, re_path

from instances import api

# Under /elements/api-v2/ ; a trailing slash is tolerated, never redirected.
urlpatterns = [
    re_path(r"^instances/?$", api.InstanceCollectionView.as_view()),
    re_path(r"^instances/(?P<instance_id>[^/]+)/?$", api.InstanceDetailView.as_view()),
    re_path(r"^instances/(?P<instance_id>[^/]+)/enabled/?$", api.InstanceEnabledView.as_view()),
    re_path(r"^instances/(?P<instance_id>[^/]+)/token/?$", api.InstanceTokenView.as_view()),
    path("elements/<str:key_or_id>/instances", api.InstanceCollectionView.as_view()),
    path("elements/<str:key_or_id>/instances/<str:instance_id>", api.InstanceDetailView.as_view()),
]
