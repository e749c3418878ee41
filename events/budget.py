"""The query budget a vendor project's polls share (contract §10: Mixpanel's query limits are
per project, however many instances poll it).

Every vendor request of a poll first takes one query from its project's budget: at most
``EVENTS_PROJECT_QUERY_BUDGET`` in any ``EVENTS_PROJECT_QUERY_WINDOW`` seconds. The project's
row is locked while the queries in the window are counted, so workers on any machine agree. A
poll that finds the budget spent stops (nothing of it is committed) and runs again once a
query leaves the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from events.models import QueryBudget, QuerySpend
from platform_core.conf import platform_settings


class BudgetExhausted(Exception):
    def __init__(self, key: str, free_at: datetime):
        super().__init__(f"the query budget of {key} is spent until {free_at.isoformat()}")
        self.free_at = free_at


def take(key: str) -> None:
    """Count one query against ``key``'s budget, or raise BudgetExhausted."""
    limit = platform_settings.EVENTS_PROJECT_QUERY_BUDGET
    window = timedelta(seconds=platform_settings.EVENTS_PROJECT_QUERY_WINDOW)
    now = timezone.now()
    with transaction.atomic():
        budget, _ = QueryBudget.objects.get_or_create(key=key)
        QueryBudget.objects.select_for_update().filter(pk=budget.pk).first()
        QuerySpend.objects.filter(budget=budget, at__lte=now - window).delete()
        spent = list(
            QuerySpend.objects.filter(budget=budget).order_by("at").values_list("at", flat=True)
        )
        if len(spent) >= limit:
            free_at = spent[len(spent) - limit] + window if limit > 0 else now + window
            raise BudgetExhausted(key, free_at)
        QuerySpend.objects.create(budget=budget, at=now)


def spent(key: str) -> int:
    window = timedelta(seconds=platform_settings.EVENTS_PROJECT_QUERY_WINDOW)
    return QuerySpend.objects.filter(budget__key=key, at__gt=timezone.now() - window).count()
