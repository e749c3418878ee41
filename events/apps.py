from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from elements.framework.configuration import register_check
        from events import signals  # noqa: F401 (registers the receivers)
        from events.checks import check_event_configuration

        register_check(check_event_configuration)
