"""The floor under ``bench.proxy_overhead``: what serving any call from this Django stack costs
before the platform does any work of its own. Served by the same gunicorn as the platform
(the bench starts it with ``DJANGO_SETTINGS_MODULE=bench.floor_settings``: the platform's
settings plus two routes in front of its own):

- ``/bench/constant``: a Django view answering a constant JSON body (no auth, no vendor call);
- ``/bench/forward``: a Django view making the benchmark's vendor call through the platform's
  own connections (``elements.framework.transport.host_connections``) and returning the body: no
  authentication, dispatch, validation, usage log or error mapping.

The platform's figure minus ``forward``'s is what the platform's own work costs.
"""

import os

from django.http import HttpResponse
from django.urls import include, path

from bench.common import SERVICE_ACCOUNTS_PATH


def constant(request):
    return HttpResponse(b'[{"id":1}]', content_type="application/json")


def forward(request):
    from elements.framework.transport import host_connections

    answer = host_connections(os.environ["MIXPANEL_BASE_URL"]).request(
        "GET",
        SERVICE_ACCOUNTS_PATH,
        body=None,
        headers={"Authorization": os.environ["BENCH_FORWARD_AUTHORIZATION"]},
        connect_timeout=5,
        read_timeout=30,
    )
    return HttpResponse(answer.data, status=answer.status, content_type="application/json")


urlpatterns = [
    path("bench/constant", constant),
    path("bench/forward", forward),
    path("", include("platform_core.urls")),
]
