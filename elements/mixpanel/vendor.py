"""How Mixpanel is reached: regional hosts and the credential rules (reference §1, §2)."""

from elements.framework.definition import Call
from elements.framework.vendor import VendorGarbage

REGION_HOSTS = {
    "US": {
        "api": "https://api.mixpanel.com",
        "app": "https://mixpanel.com",
        "data": "https://data.mixpanel.com",
    },
    "EU": {
        "api": "https://api-eu.mixpanel.com",
        "app": "https://eu.mixpanel.com",
        "data": "https://data-eu.mixpanel.com",
    },
    "IN": {
        "api": "https://api-in.mixpanel.com",
        "app": "https://in.mixpanel.com",
        "data": "https://data-in.mixpanel.com",
    },
}


def hosts(configuration: dict) -> dict[str, str]:
    return REGION_HOSTS[configuration.get("region") or "US"]


def uses_service_account(configuration: dict) -> bool:
    """A password means service-account credentials; a username alone is the API secret."""
    return bool(configuration.get("password"))


def project_query(configuration: dict) -> dict:
    """``project_id`` goes with service-account calls to query, export and import."""
    project_id = configuration.get("project_id")
    return {"project_id": project_id} if project_id is not None else {}


def results_of(response, kind: type, what: str):
    """The ``results`` of an app API answer, a ``kind`` (list or dict); else VendorGarbage,
    naming ``what`` was asked for ("annotation")."""
    body = response.json()
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, kind):
        raise VendorGarbage(
            f"Mixpanel's {what} answer had no results.", provider_status=response.status
        )
    return results


def organization_id(call: Call) -> int | None:
    return call.inputs.get("organization_id") or call.configuration.get("organization_id")


def verify(call: Call):
    """The one cheap vendor call that proves the credentials work (instance create, ping)."""
    config = call.configuration
    if uses_service_account(config):
        if config.get("organization_id"):
            path = f"/api/app/organizations/{config['organization_id']}/service-accounts"
        else:
            path = "/api/app/me"
        return call.vendor.request("GET", "app", path)
    # An API secret alone cannot use the app API: ask the query API for one top event.
    return call.vendor.request(
        "GET",
        "app",
        "/api/query/events/top",
        query={"type": "general", "limit": 1, **project_query(config)},
    )
