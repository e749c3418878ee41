from django.core.management.base import BaseCommand, CommandError

from instances.crypto import CredentialsUnreadable
from instances.services import rotate_credentials_key


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential and token with the first key of CREDENTIALS_KEYS. "
        "Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        try:
            count = rotate_credentials_key()
        except CredentialsUnreadable as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(f"Re-encrypted {count} instance(s) with the first key.")
