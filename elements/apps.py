from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ElementsConfig(AppConfig):
    name = "elements"
    verbose_name = "Elements"

    def ready(self):
        from elements.services import sync_element_catalog

        post_migrate.connect(sync_element_catalog, sender=self)
