"""An instance's pollers follow its configuration: saved with events enabled, it has one poller
per polled object; with events disabled (or an object dropped), those pollers go. A deleted
instance takes its pollers, events and notifications with it (foreign keys). Rotating the
credentials key re-encrypts the events' records too."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from events import services
from instances.models import Instance
from instances.signals import Reencrypted, credentials_key_rotated


@receiver(post_save, sender=Instance)
def sync_pollers(sender, instance, **kwargs):
    services.pollers_sync(instance=instance)


@receiver(credentials_key_rotated)
def reencrypt_records(sender, **kwargs) -> Reencrypted:
    rewritten, unreadable = services.records_reencrypt()
    message = ""
    if unreadable:
        message = (
            f"{unreadable} event record(s) could not be read with any configured key: keep the "
            "key they were written with, or delete those events."
        )
    return Reencrypted(count=rewritten, what="event record(s)", unreadable_message=message)
