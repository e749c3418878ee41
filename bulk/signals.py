"""A deleted job (directly, or with its user) takes its result files with it. A deleted
instance stops its jobs, which stay behind (see ``BulkJob.instance``). Rotating the credentials
key re-encrypts the result parts too."""

from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from bulk import services, storage
from bulk.models import BulkJob
from instances.models import Instance
from instances.signals import Reencrypted, credentials_key_rotated
from platform_core.conf import platform_settings


@receiver(post_delete, sender=BulkJob)
def delete_result_files(sender, instance, **kwargs):
    job_id = instance.pk
    transaction.on_commit(lambda: storage.delete_job_files(job_id))


@receiver(pre_delete, sender=Instance)
def stop_jobs_of_deleted_instance(sender, instance, **kwargs):
    services.jobs_stop_for_deleted_instance(instance_id=instance.pk)


@receiver(credentials_key_rotated)
def reencrypt_results(sender, **kwargs) -> Reencrypted:
    parts, unreadable = services.results_reencrypt()
    message = ""
    if unreadable:
        message = (
            f"{unreadable} bulk result part(s) could not be read with any configured key: "
            "keep the key they were written with until they expire "
            f"({platform_settings.BULK_RESULT_RETENTION_DAYS:g} days)."
        )
    return Reencrypted(count=parts, what="bulk result part(s)", unreadable_message=message)
