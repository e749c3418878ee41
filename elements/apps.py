from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ElementsConfig(AppConfig):
    name = "elements"
    verbose_name = "Elements"

    def ready(self):
        from elements.framework.registry import all_elements
        from elements.services import sync_element_catalog

        # Finds and registers every element folder now, so that each element has its common
        # operations before any request or task sees it.
        all_elements()

        post_migrate.connect(sync_element_catalog, sender=self)
