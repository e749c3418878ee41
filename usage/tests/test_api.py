"""``GET /usage``'s ``from``/``to``: any ISO-8601 date or date-time in range filters by its UTC
instant; anything else is a 400 in the error shape (platform_core/dates.py), never a 500."""

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from platform_core.dates import OutOfRange, parse_instant
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

USAGE = "/elements/api-v2/usage"


def test_instants_are_read_in_utc_within_years_1_to_9999():
    assert parse_instant("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_instant(" 2024-03-01T10:00:00 ") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parse_instant("2024-03-01T10:00:00+02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert parse_instant("0001-01-01T00:00:00-14:00") == datetime(1, 1, 1, 14, tzinfo=UTC)
    assert parse_instant("9999-12-31T23:59:59Z") == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert parse_instant("yesterday") is None
    assert parse_instant("2024-02-30") is None
    for text in (
        "0001-01-01T00:00:00+00:01",  # year 0 in UTC
        "9999-12-31T23:59:59-00:01",  # year 10000 in UTC
        "2024-03-01T00:00:00-23:59",  # no time zone is that far from UTC
    ):
        with pytest.raises(OutOfRange):
            parse_instant(text)


def usage_at(tenant, *stamps: str) -> None:
    for n, stamp in enumerate(stamps):
        UsageRecord.objects.create(
            request_id=f"r{n}",
            user_id=tenant.user.pk,
            element_key="mixpanel",
            method="GET",
            path="/x",
            status=200,
            duration_ms=1.0,
            created_at=datetime.fromisoformat(stamp),
        )


def listed(tenant, **params) -> list[str]:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    response = tenant.client().get(f"{USAGE}?{query}")
    assert response.status_code == 200, response.content
    return [r["dateTime"] for r in response.json()]


def test_from_and_to_filter_on_the_utc_instant(tenant):
    usage_at(tenant, "2024-03-01T09:00:00+00:00", "2024-03-01T11:00:00+00:00")
    assert listed(tenant, **{"from": "2024-03-01T12:00:00+02:00"}) == [
        "2024-03-01T11:00:00.000000Z"
    ]
    assert listed(tenant, to="2024-03-01T05:00:00-05:00") == ["2024-03-01T09:00:00.000000Z"]
    assert len(listed(tenant, **{"from": "2024-03-01", "to": "2024-03-02"})) == 2
    # The ends of the range are fine, in any zone that exists.
    assert len(listed(tenant, **{"from": "0001-01-01", "to": "9999-12-31"})) == 2
    assert len(listed(tenant, **{"from": "0001-01-01T00:00:00-14:00"})) == 2
    assert len(listed(tenant, to="9999-12-31T23:59:59.999999+14:00")) == 2


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("from", "0001-01-01T00:00:00-23:59", "UTC offset"),
        ("to", "9999-12-31T23:59:59-23:59", "UTC offset"),
        ("from", "0001-01-01T00:00:00+00:01", "between 0001-01-01T00:00:00Z and 9999-12-31"),
        ("to", "9999-12-31T23:59:59-00:01", "between 0001-01-01T00:00:00Z and 9999-12-31"),
        ("from", "2024-03-01T00:00:00+99:00", "ISO-8601"),
        ("to", "2024-02-30", "ISO-8601"),
        ("from", "yesterday", "ISO-8601"),
    ],
)
def test_a_bad_date_is_a_400_naming_it(tenant, field, value, words):
    response = tenant.client().get(f"{USAGE}?{field}={quote(value)}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["requestId"] == response["Elements-Request-Id"]
    assert body["message"].startswith(f"{field} is ") and words in body["message"]
    assert [e["field"] for e in body["errors"]] == [field]
