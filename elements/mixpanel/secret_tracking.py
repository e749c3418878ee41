"""Tracking one event without a project token (reference §5, seed 002).

``/track`` is authenticated by the project token inside the event; an instance holding only
the project's API secret (or a service account) has none. Mixpanel's ``/import`` takes those
credentials, so the event is imported instead and the answer given in ``/track``'s terms:
``{"status": 1, "error": null}`` when it got in, ``status: 0`` and Mixpanel's reason when
Mixpanel refused the event itself.
"""

from elements.framework.definition import Call
from elements.framework.vendor import VendorGarbage, raise_for_status
from elements.mixpanel.vendor import project_query


def track_by_import(call: Call, event: str, properties: dict, query: dict) -> tuple[dict, int]:
    # /import needs a distinct_id (it may be empty: an anonymous event, as /track allows).
    properties = {"distinct_id": "", **properties}
    response = call.vendor.request(
        "POST",
        "api",
        "/import",
        query={
            "strict": query.get("strict", "1"),
            **project_query(call.configuration),
            **({"project_id": query["project_id"]} if query.get("project_id") else {}),
        },
        json_body=[{"event": event, "properties": properties}],
        check=False,
    )
    body = response.json() if response.status in (200, 400) else None
    if response.status == 400 and isinstance(body, dict) and body.get("failed_records"):
        failed = body["failed_records"][0]
        message = failed.get("message") if isinstance(failed, dict) else failed
        answer = {"status": 0, "error": str(message or body.get("error"))}
    else:
        raise_for_status(response)
        if not isinstance(body, dict):
            raise VendorGarbage(
                "Mixpanel's import answer was not understood.", provider_status=response.status
            )
        answer = {"status": 1, "error": None}
    return {"event": event, "properties": properties, **answer}, response.status
