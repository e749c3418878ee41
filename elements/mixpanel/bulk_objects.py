"""The bulk objects past the seeds (contract §6), each with incremental sync: a key, a cursor,
and the vendor asked for as little as it allows. They reuse the operations' vendor functions.

- ``cohorts``: the cohort list; key ``id``, cursor ``created``. One call.
- ``cohort-members``: each cohort's member profiles, with ``cohort_id``; key
  ``cohort_id,$distinct_id``, cursor ``$properties.$last_seen``. The list, then engage pages
  per cohort (``filter_by_cohort``, the cursor as an engage selector).
- ``annotations``: key ``id``, cursor ``date``. One list, from the cursor's day.
- ``funnels``: one saved funnel's conversion on one day of entry; key ``funnel_id,date``,
  cursor ``date`` (a day). The funnel list, then one query per funnel per window.
- ``revenue``: one day's revenue (``$overall``, the range's total, left out); key and cursor
  ``date`` (a day). One query per window.
- ``groups``: the group profiles of every group key in ``data_groups``; key
  ``$group_key,$group_id``, cursor ``$properties.$last_seen``. Engage pages per group key.

A key of several fields is their combination (comma-separated paths, as Airbyte's composite
keys). Every record carries its key as a top-level ``id`` (contract §9), a composite one joined
with ``:`` (elements/framework/record_ids.py): ``7509:alice`` (cohort-members),
``company_id:acme`` (groups), ``7:2026-11-30`` (funnels), ``2026-11-30`` (revenue).

Mixpanel keeps cohorts' ``created`` and annotations' ``date`` as ``YYYY-MM-DD HH:MM:SS``
without a zone: read as UTC, like ``$last_seen``. Neither changes when a cohort or an
annotation is edited, so an incremental sync brings the new ones, not the edited ones.

Funnels and revenue are day-granular: a sync from ``2026-11-30`` reads that day again (its
numbers may have grown: a funnel counts conversions after the day of entry), and the next
cursor is the last day read. A request covers at most ``WINDOW_DAYS`` days (Airbyte's
``date_window_size``; Mixpanel computes a long range slowly, and answers it whole), so a long
range is split and each window is one checkpoint (``bulk_sources.DayWindowSource``). Every
request counts against the Query API's 60 queries an hour per project: 30 days keeps a year
of one funnel at 13 queries.

Engage-backed objects (``cohort-members``, ``groups``) page like ``users`` and resume from the
checkpoint ``{"todo": [cohort ids or group keys left], "page": n, "session_id": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date

from elements.framework.bulk import BulkQuery, BulkQueryError, Page
from elements.framework.bulk_sources import DayWindowSource, ListSource
from elements.framework.definition import Call
from elements.framework.record_ids import joined_id
from elements.framework.vendor import VendorGarbage
from elements.mixpanel.annotations import list_annotations
from elements.mixpanel.bulk import ENGAGE_PAGE_SIZE, last_seen, seen_since, since_selector
from elements.mixpanel.cohorts import cohort_members_page, list_cohorts
from elements.mixpanel.groups import group_profile
from elements.mixpanel.profiles import engage
from elements.mixpanel.queries import funnel_by_day, revenue_by_day, saved_funnels

WINDOW_DAYS = 30


def _raw(records: list[dict]) -> list[bytes]:
    return [json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in records]


# --- cohorts and annotations: one list each ---------------------------------------------------


class CohortsSource(ListSource):
    def __init__(self):
        super().__init__(
            fetch=lambda call: list_cohorts(call)[0], cursor=lambda c: c.get("created")
        )


class AnnotationsSource(ListSource):
    """Mixpanel lists annotations between two days: asked from the cursor's day on."""

    def __init__(self):
        super().__init__(
            fetch=lambda call: list_annotations(call)[0], cursor=lambda a: a.get("date")
        )

    def records(self, call: Call, query: BulkQuery) -> list[dict]:
        if query.since is None:
            return self.fetch(call)
        return list_annotations(call, from_date=query.since.astimezone(UTC).date())[0]


# --- funnels and revenue: day windows ---------------------------------------------------------


def _days_of(body, key: str, status: int) -> dict:
    days = body.get(key) if isinstance(body, dict) else None
    if not isinstance(days, dict):
        raise VendorGarbage(f"Mixpanel's answer had no {key}.", provider_status=status)
    return days


def _day_of(record: dict):
    return record.get("date")


class FunnelsSource:
    """Each saved funnel's conversion per day of entry: ``{"funnel_id", "name", "date",
    "steps", "analysis"}``. The funnel list is read once a job (and again when it resumes),
    then each window asks for every funnel."""

    def validate(self, query: BulkQuery) -> None:
        _funnel_windows(()).validate(query)

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        source = _funnel_windows(())
        if not source.windows(query):  # the cursor is past `to`: nothing to ask for
            return
        yield from _funnel_windows(saved_funnels(call)[0]).pages(call, query, checkpoint)


def _funnel_windows(funnels) -> DayWindowSource:
    def window(call: Call, first: date, last: date, query: BulkQuery) -> list[dict]:
        return [r for funnel in funnels for r in _funnel_days(call, funnel, first, last)]

    return DayWindowSource(window, _day_of, window_days=WINDOW_DAYS)


def _funnel_days(call: Call, funnel: dict, first: date, last: date) -> list[dict]:
    result = funnel_by_day(call, funnel["funnel_id"], first, last)
    return [
        {
            "id": joined_id(funnel["funnel_id"], day),
            "funnel_id": funnel["funnel_id"],
            "name": funnel.get("name"),
            "date": day,
            "steps": row.get("steps") if isinstance(row, dict) else None,
            "analysis": row.get("analysis") if isinstance(row, dict) else None,
        }
        for day, row in sorted(_days_of(result.body, "data", result.vendor_status).items())
    ]


def _revenue_window(call: Call, first: date, last: date, query: BulkQuery) -> list[dict]:
    result = revenue_by_day(call, first, last)
    days = _days_of(result.body, "results", result.vendor_status)
    return [
        {"id": day, "date": day, **(row if isinstance(row, dict) else {})}
        for day, row in sorted(days.items())
        if day != "$overall"  # the range's total, not a day
    ]


class RevenueSource(DayWindowSource):
    def __init__(self):
        super().__init__(fetch=_revenue_window, cursor=_day_of, window_days=WINDOW_DAYS)


# --- cohort members and group profiles: engage pages per cohort or group key ------------------


class _EngagePartitions:
    """Engage pages for each of several partitions (cohorts, group keys), in order, with the
    ``where`` and the cursor as for ``users`` (an engage selector, then an exact filter)."""

    def validate(self, query: BulkQuery) -> None:
        since_selector(query)

    def partitions(self, call: Call) -> list:
        raise NotImplementedError

    def page(self, call: Call, partition, *, page: int, session_id, where) -> tuple:
        """``(profiles, session_id, more)`` of one engage page of the partition."""
        raise NotImplementedError

    def record(self, partition, profile: dict) -> dict:
        raise NotImplementedError

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        where = since_selector(query)
        if checkpoint:
            todo, page, session_id = (
                checkpoint["todo"],
                checkpoint["page"],
                checkpoint["session_id"],
            )
        else:
            todo, page, session_id = self.partitions(call), 0, None
        total = len(todo)
        if not todo:
            yield Page(checkpoint={"todo": [], "page": 0, "session_id": None}, done=True)
            return
        while todo:
            profiles, session_id, more = self.page(
                call, todo[0], page=page, session_id=session_id, where=where
            )
            records = [self.record(todo[0], p) for p in profiles if seen_since(p, query.since)]
            if more:
                page += 1
            else:
                todo, page, session_id = todo[1:], 0, None
            yield Page(
                records=records,
                raw=_raw(records),
                checkpoint={"todo": todo, "page": page, "session_id": session_id},
                done=not todo,
                progress=(total - len(todo), total),
                cursors=[last_seen(r) for r in records],
            )


class CohortMembersSource(_EngagePartitions):
    """Every cohort's members (engage ``filter_by_cohort``), each with its ``cohort_id``: a
    profile in two cohorts is two records."""

    def partitions(self, call: Call) -> list[int]:
        return sorted(c["id"] for c in list_cohorts(call)[0] if isinstance(c.get("id"), int))

    def page(self, call, cohort_id, *, page, session_id, where):
        members, session_id, more, _ = cohort_members_page(
            call,
            cohort_id,
            page_size=ENGAGE_PAGE_SIZE,
            session_id=session_id,
            page=page,
            where=where,
        )
        return members, session_id, more

    def record(self, cohort_id, profile: dict) -> dict:
        return {
            "id": joined_id(cohort_id, profile.get("$distinct_id")),
            "cohort_id": cohort_id,
            **profile,
        }


class GroupsSource(_EngagePartitions):
    """The group profiles of every group key in the instance's ``data_groups``, by key name."""

    def partitions(self, call: Call) -> list[str]:
        data_groups = call.configuration.get("data_groups") or {}
        if not data_groups:
            raise BulkQueryError(
                "groups needs data_groups, the group keys' data_group_id (Project Settings): "
                'PATCH /instances/{id} with {"configuration": {"data_groups": '
                '{"company_id": -1405123841946871899}}}.'
            )
        return sorted(data_groups)

    def page(self, call, group_key, *, page, session_id, where):
        data_group_id = (call.configuration.get("data_groups") or {}).get(group_key)
        if data_group_id is None:  # removed from data_groups since the job started
            raise BulkQueryError(f"{group_key[:100]} is no longer in data_groups.")
        body, _ = engage(
            call,
            {
                "data_group_id": str(data_group_id),
                "where": where,
                "page": page,
                "session_id": session_id,
                "page_size": ENGAGE_PAGE_SIZE,
            },
        )
        total = body.get("total")
        size = body.get("page_size")
        size = size if isinstance(size, int) and size > 0 else ENGAGE_PAGE_SIZE
        results = body["results"]
        more = (
            total > (page + 1) * size if isinstance(total, int) else len(results) >= size
        ) and bool(results)
        session = str(body["session_id"]) if body.get("session_id") else None
        return results, session, more and session is not None

    def record(self, group_key, profile: dict) -> dict:
        return group_profile(group_key, profile)
