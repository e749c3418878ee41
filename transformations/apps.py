from django.apps import AppConfig


class TransformationsConfig(AppConfig):
    name = "transformations"
    verbose_name = "Object definitions and transformations"
