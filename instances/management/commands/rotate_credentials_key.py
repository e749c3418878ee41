from django.core.management.base import BaseCommand, CommandError

from instances.crypto import CredentialsUnreadable
from instances.services import rotate_credentials_key
from instances.signals import credentials_key_rotated


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential and token, and every stored bulk result, with the "
        "first key of CREDENTIALS_KEYS. Put the new key first everywhere, run this, then "
        "remove the old key."
    )

    def handle(self, *args, **options):
        try:
            count = rotate_credentials_key()
        except CredentialsUnreadable as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        # What other apps keep under the same keys (bulk results): one operator step for all.
        reports = [report for _, report in credentials_key_rotated.send(sender=self.__class__)]
        rewritten = "".join(f" and {r.count} {r.what}" for r in reports)
        self.stdout.write(f"Re-encrypted {count} instance(s){rewritten} with the first key.")
        problems = [r.unreadable_message for r in reports if r.unreadable_message]
        if problems:
            raise CommandError(" ".join(problems))
