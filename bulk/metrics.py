"""Bulk jobs in ``GET /metrics`` (``platform_core/metrics.py``), counted at scrape time."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from bulk.models import BulkJob


class BulkJobsCollector:
    """``platform_bulk_jobs{status}``: every status, 0 included (one grouped query on the
    jobs table)."""

    def collect(self):
        counts = dict.fromkeys(BulkJob.Status.values, 0)
        for row in BulkJob.objects.order_by().values("status").annotate(jobs=Count("id")):
            counts[row["status"]] = row["jobs"]
        family = GaugeMetricFamily("platform_bulk_jobs", "Bulk jobs by status.", labels=["status"])
        for status, jobs in counts.items():
            family.add_metric([status], jobs)
        yield family
