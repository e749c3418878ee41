from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "bulk"
    verbose_name = "Bulk downloads"

    def ready(self):
        from bulk import memory, signals, worker  # noqa: F401 (registers the receivers)
        from bulk.metrics import BulkJobsCollector
        from platform_core.metrics import register_scrape_collector

        register_scrape_collector(BulkJobsCollector())
