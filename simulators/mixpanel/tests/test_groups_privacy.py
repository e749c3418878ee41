"""The simulator's Group Analytics (``/groups``, engage with ``data_group_id``) and GDPR v3 API
(``/api/app/data-{deletions,retrievals}/v3.0``), over plain HTTP. No Django."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from simulators.mixpanel.state import (
    DEFAULT_GDPR_TOKEN,
    DEFAULT_GROUP_KEYS,
    DEFAULT_PROJECT_TOKEN,
)
from simulators.mixpanel.testing import basic_auth

SECRET = basic_auth("sim-api-secret", "")
COMPANY = DEFAULT_GROUP_KEYS["company_id"]
BEARER = {"Authorization": f"Bearer {DEFAULT_GDPR_TOKEN}"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def groups(sim, updates, verbose=True):
    status, _, body = sim.request("POST", "/groups" + ("?verbose=1" if verbose else ""), updates)
    assert status == 200
    return json.loads(body)


def update(group_id="Acme", **operation):
    return {
        "$token": DEFAULT_PROJECT_TOKEN,
        "$group_key": "company_id",
        "$group_id": group_id,
        **operation,
    }


def engage(sim, **params):
    status, _, body = sim.request(
        "POST", "/api/query/engage", urlencode(params), headers=FORM, auth=SECRET
    )
    return status, json.loads(body)


def test_group_operations_apply(sim):
    assert groups(sim, [update(**{"$set": {"plan": "Pro", "seats": 3}})]) == {
        "error": None,
        "status": 1,
    }
    groups(sim, [update(**{"$set_once": {"plan": "Free", "founded": 1999}})])
    groups(sim, [update(**{"$union": {"products": ["A", "B"]}})])
    groups(sim, [update(**{"$union": {"products": ["B", "C"]}})])
    groups(sim, [update(**{"$remove": {"products": "A"}})])
    groups(sim, [update(**{"$unset": ["seats"]})])
    status, body = engage(sim, data_group_id=str(COMPANY))
    assert status == 200 and body["total"] == 1
    (profile,) = body["results"]
    assert profile == {
        "$distinct_id": "Acme",
        "$properties": {"plan": "Pro", "founded": 1999, "products": ["B", "C"]},
    }
    groups(sim, [update(**{"$delete": None})])
    assert engage(sim, data_group_id=str(COMPANY))[1]["results"] == []


@pytest.mark.parametrize(
    "bad,error",
    [
        ({"$group_key": "company_id", "$group_id": "A", "$set": {}}, "token, missing or empty"),
        (update(group_id=""), "$group_id, missing or empty"),
        (update(), "exactly one group operation"),
        (update(**{"$set": {}, "$unset": ["a"]}), "exactly one group operation"),
        (update(**{"$unset": []}), "$unset"),
        (update(**{"$union": {"p": "x"}}), "$union"),
        (update(**{"$set": ["x"]}), "$set, must be an object"),
        (update(**{"$delete": "x"}), "$delete"),
    ],
)
def test_bad_group_updates_are_refused_with_200_and_status_0(sim, bad, error):
    body = groups(sim, [bad])
    assert body["status"] == 0 and error in body["error"]
    status, _, plain = sim.request("POST", "/groups", [bad])
    assert status == 200 and plain == b"0"


def test_group_query_filters_and_pages(sim):
    groups(
        sim,
        [
            update(name, **{"$set": {"plan": plan}})
            for name, plan in (("Acme", "Pro"), ("Globex", "Free"), ("Initech", "Pro"))
        ],
    )
    status, body = engage(sim, data_group_id=str(COMPANY), where='properties["plan"] == "Pro"')
    assert status == 200 and [p["$distinct_id"] for p in body["results"]] == ["Acme", "Initech"]
    first = engage(sim, data_group_id=str(COMPANY), page_size="2")[1]
    second = engage(
        sim, data_group_id=str(COMPANY), page_size="2", page="1", session_id=first["session_id"]
    )[1]
    assert [p["$distinct_id"] for p in first["results"] + second["results"]] == [
        "Acme",
        "Globex",
        "Initech",
    ]
    assert engage(sim, data_group_id=str(COMPANY), distinct_id="Globex")[1]["total"] == 1
    # User profiles are another namespace.
    assert engage(sim, distinct_id="Acme")[1]["results"] == []


def test_unknown_data_group_id_is_400(sim):
    status, body = engage(sim, data_group_id="12345")
    assert status == 400 and "data_group_id" in body["error"]
    status, body = engage(sim, data_group_id="abc")
    assert status == 400


def test_group_keys_are_configurable(sim):
    sim.configure(group_keys={"team_id": 77})
    groups(sim, [{**update(**{"$set": {"a": 1}}), "$group_key": "team_id"}])
    assert engage(sim, data_group_id="77")[1]["total"] == 1
    with pytest.raises(RuntimeError):
        sim.configure(group_keys={"team_id": "77"})


# --- GDPR v3 --------------------------------------------------------------------------------


def gdpr(sim, method, path, body=None, headers=BEARER, token=DEFAULT_PROJECT_TOKEN):
    query = f"?token={token}" if token else ""
    status, _, raw = sim.request(method, f"/api/app/{path}{query}", body, headers=headers)
    return status, json.loads(raw) if raw else None


def test_deletion_lifecycle(sim):
    status, body = gdpr(
        sim, "POST", "data-deletions/v3.0/", {"distinct_ids": ["u1"], "compliance_type": "CCPA"}
    )
    assert status == 201 and body["status"] == "ok"
    task = body["results"]["task_id"]
    status, body = gdpr(sim, "GET", f"data-deletions/v3.0/{task}")
    assert status == 200
    assert body["results"]["status"] == "PENDING" and body["results"]["tracking_id"] == task
    assert body["results"]["compliance_type"] == "CCPA" and body["results"]["distinct_ids"] == [
        "u1"
    ]
    assert gdpr(sim, "DELETE", f"data-deletions/v3.0/{task}") == (204, None)
    assert gdpr(sim, "GET", f"data-deletions/v3.0/{task}")[1]["results"]["status"] == "REVOKED"
    assert gdpr(sim, "DELETE", f"data-deletions/v3.0/{task}")[0] == 405


def test_retrieval_and_its_status(sim):
    status, body = gdpr(
        sim,
        "POST",
        "data-retrievals/v3.0/",
        {"distinct_ids": ["u1"], "compliance_type": "CCPA", "disclosure_type": "Sources"},
    )
    assert status == 201
    task = body["results"]["task_id"]
    results = gdpr(sim, "GET", f"data-retrievals/v3.0/{task}")[1]["results"]
    assert results["disclosure_type"] == "Sources" and results["results"] == ""
    # A retrieval is not a deletion.
    assert gdpr(sim, "GET", f"data-deletions/v3.0/{task}")[0] == 404
    assert gdpr(sim, "DELETE", f"data-retrievals/v3.0/{task}")[0] == 405


def test_privacy_task_status_is_checked(sim):
    with pytest.raises(RuntimeError):
        sim.configure(privacy_task_status="DONE")


def test_started_tasks_cannot_be_cancelled(sim):
    sim.configure(privacy_task_status="STARTED")
    task = gdpr(sim, "POST", "data-deletions/v3.0/", {"distinct_ids": ["u1"]})[1]["results"][
        "task_id"
    ]
    status, body = gdpr(sim, "DELETE", f"data-deletions/v3.0/{task}")
    assert status == 405 and body["status"] == "error"


@pytest.mark.parametrize(
    "headers,token,status",
    [
        ({}, DEFAULT_PROJECT_TOKEN, 401),
        ({"Authorization": "Bearer wrong"}, DEFAULT_PROJECT_TOKEN, 401),
        ({"Authorization": basic_auth("sim-api-secret", "")}, DEFAULT_PROJECT_TOKEN, 401),
        (BEARER, None, 400),
        (BEARER, "another-project", 403),
    ],
)
def test_gdpr_auth(sim, headers, token, status):
    got, body = gdpr(sim, "POST", "data-deletions/v3.0/", {"distinct_ids": ["u"]}, headers, token)
    assert got == status and body["status"] == "error" and body["error"]


@pytest.mark.parametrize(
    "body,error",
    [
        ({}, "distinct_ids"),
        ({"distinct_ids": []}, "distinct_ids"),
        ({"distinct_ids": [1]}, "distinct_ids"),
        ({"distinct_ids": ["u"] * 2000}, "at most 1999"),
        ({"distinct_ids": ["u"], "compliance_type": "X"}, "compliance_type"),
        ({"distinct_ids": ["u"], "disclosure_type": "Data"}, "disclosure_type"),
    ],
)
def test_bad_gdpr_bodies_are_400(sim, body, error):
    status, answer = gdpr(sim, "POST", "data-deletions/v3.0/", body)
    assert status == 400 and error in answer["error"]


def test_gdpr_rate_limit_when_rate_limits_are_on(sim):
    sim.configure(rate_limits={"enabled": True})
    body = {"distinct_ids": ["u1"]}
    assert gdpr(sim, "POST", "data-deletions/v3.0/", body)[0] == 201
    status, headers, raw = sim.request(
        "POST", f"/api/app/data-deletions/v3.0/?token={DEFAULT_PROJECT_TOKEN}", body, headers=BEARER
    )
    assert status == 429 and headers["Retry-After"] == "1"
    assert "rate limit" in json.loads(raw)["error"]
    time.sleep(1.05)
    assert gdpr(sim, "POST", "data-deletions/v3.0/", body)[0] == 201
