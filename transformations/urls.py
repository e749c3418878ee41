from django.urls import re_path

from transformations import api

_ID = r"(?P<instance_id>[^/]+)"
_NAME = r"(?P<name>[^/]+)"
_ELEMENT = r"(?P<key_or_id>[^/]+)"

# Under /elements/api-v2/ ; a trailing slash is tolerated, never redirected.
urlpatterns = [
    re_path(r"^organizations/objects/definitions/?$", api.OrganizationDefinitionMapView.as_view()),
    re_path(
        rf"^organizations/objects/{_NAME}/definitions/?$", api.OrganizationDefinitionView.as_view()
    ),
    re_path(rf"^instances/{_ID}/objects/definitions/?$", api.InstanceDefinitionMapView.as_view()),
    re_path(
        rf"^instances/{_ID}/objects/{_NAME}/definitions/?$", api.InstanceDefinitionView.as_view()
    ),
    re_path(
        rf"^organizations/elements/{_ELEMENT}/transformations/?$",
        api.OrganizationTransformationSetView.as_view(),
    ),
    re_path(
        rf"^organizations/elements/{_ELEMENT}/transformations/{_NAME}/?$",
        api.OrganizationTransformationView.as_view(),
    ),
    re_path(rf"^instances/{_ID}/transformations/?$", api.InstanceTransformationSetView.as_view()),
    re_path(
        rf"^instances/{_ID}/transformations/{_NAME}/?$", api.InstanceTransformationView.as_view()
    ),
]
