"""An instance's pollers follow its configuration: saved with events enabled, it has one poller
per polled object; with events disabled (or an object dropped), those pollers go. A deleted
instance takes its pollers, events and notifications with it (foreign keys)."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from events import services
from instances.models import Instance


@receiver(post_save, sender=Instance)
def sync_pollers(sender, instance, **kwargs):
    services.pollers_sync(instance=instance)
