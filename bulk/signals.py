"""A deleted job (directly, or with its instance or user) takes its result files with it."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from bulk import storage
from bulk.models import BulkJob


@receiver(post_delete, sender=BulkJob)
def delete_result_files(sender, instance, **kwargs):
    job_id = instance.pk
    transaction.on_commit(lambda: storage.delete_job_files(job_id))
