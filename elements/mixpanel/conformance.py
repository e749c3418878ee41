"""What the element conformance suite (elements/framework/testing.py) needs from Mixpanel: a valid
configuration with every secret field filled (the suite never sends it to Mixpanel), and the
answers its fake vendor gives so that every list operation and bulk object has records to check
for their top-level ``id``."""

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

CONFIGURATION = {
    "username": "conformance.sa-user.mp-service-account",
    "password": "conformance-sa-secret",
    "organization_id": 1001,
    "project_id": 2002,
    "project_token": "conformance-project-token",
    "gdpr_token": "conformance-gdpr-token",
    "event.notification.signature.key": "conformance-signing-key",
}

# Group profiles are read by group key: the key's data_group_id (GET /groups/company_id).
RECORD_CONFIGURATION = {"data_groups": {"company_id": -1405123841946871899}}
PATH_PARAMETERS = {"groupKey": "company_id", "cohortId": 1001}

# Mixpanel's top events, answered as Mixpanel sends them: a query answer, not records.
QUERY_ANSWERS = {"getTopActivities"}


def _fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


_DAY = "2026-11-29"
_EXPORT = (
    b'{"event":"Signed up","properties":{"time":1764374400,"distinct_id":"4",'
    b'"$insert_id":"a1b2c3"}}\n'
    # No $insert_id: the record's id is a stable hash of what identifies the event.
    b'{"event":"Viewed","properties":{"time":1764374460,"distinct_id":"4"}}\n'
)

VENDOR_RECORDS = [
    ("POST", "/api/query/engage", _fixture("engage_page.json")),
    ("GET", "/api/app/organizations/1001/service-accounts", _fixture("service_accounts_list.json")),
    ("GET", "/api/2.0/export", _EXPORT),
    (
        "POST",
        "/api/query/cohorts/list",
        [
            {
                "id": 1001,
                "name": "Power users",
                "description": "",
                "count": 1,
                "is_visible": 1,
                "created": "2024-04-20 18:45:10",
                "project_id": 2002,
            }
        ],
    ),
    (
        "GET",
        "/api/app/projects/2002/annotations",
        {
            "status": "ok",
            "results": [
                {"id": 101, "date": "2024-05-01 10:00:00", "description": "Launch", "tags": []}
            ],
        },
    ),
    ("GET", "/lookup-tables", {"results": [{"id": "9f3c0d4e-countries", "name": "Countries"}]}),
    ("GET", "/api/query/funnels/list", [{"funnel_id": 7509, "name": "Signup funnel"}]),
    (
        "GET",
        "/api/query/funnels",
        {
            "meta": {"dates": [_DAY]},
            "data": {_DAY: {"steps": [{"count": 3}], "analysis": {"completion": 1}}},
        },
    ),
    (
        "GET",
        "/api/2.0/engage/revenue",
        {
            "status": "ok",
            "results": {
                _DAY: {"amount": 25.5, "count": 3, "paid_count": 1},
                "$overall": {"amount": 25.5},
            },
        },
    ),
]
