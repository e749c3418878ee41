from django.core.management.base import BaseCommand, CommandError

from instances.crypto import CredentialsUnreadable
from instances.services import rotate_credentials_key
from platform_core.conf import platform_settings


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential and token, and every stored bulk result, with the "
        "first key of CREDENTIALS_KEYS. Put the new key first everywhere, run this, then "
        "remove the old key."
    )

    def handle(self, *args, **options):
        # Bulk results are the bulk app's; rotating the key is one operator step for both.
        from bulk.services import results_reencrypt

        try:
            count = rotate_credentials_key()
        except CredentialsUnreadable as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        parts, unreadable = results_reencrypt()
        self.stdout.write(
            f"Re-encrypted {count} instance(s) and {parts} bulk result part(s) with the first key."
        )
        if unreadable:
            raise CommandError(
                f"{unreadable} bulk result part(s) could not be read with any configured key: "
                "keep the key they were written with until they expire "
                f"({platform_settings.BULK_RESULT_RETENTION_DAYS:g} days)."
            )
