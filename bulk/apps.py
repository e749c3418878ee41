from django.apps import AppConfig


class BulkConfig(AppConfig):
    name = "bulk"
    verbose_name = "Bulk downloads"

    def ready(self):
        from bulk import signals, worker  # noqa: F401 (registers the receivers)
