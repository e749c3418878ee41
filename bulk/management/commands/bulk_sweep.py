"""Run the bulk sweeper once (what every worker runs every BULK_SWEEP_INTERVAL seconds):
re-queue jobs whose worker died or whose broker message was lost, and overdue callbacks.
``--purge`` also deletes result files past BULK_RESULT_RETENTION_DAYS."""

import json

from django.core.management.base import BaseCommand

from bulk.services import purge_results, sweep


class Command(BaseCommand):
    help = "Re-queue stalled or lost bulk jobs and callbacks; optionally purge expired results."

    def add_arguments(self, parser):
        parser.add_argument("--purge", action="store_true", help="also purge expired results")

    def handle(self, *args, **options):
        counts = sweep()
        if options["purge"]:
            counts["purged"] = purge_results()
        self.stdout.write(json.dumps(counts))
