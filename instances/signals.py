"""Signals the instances app sends; other apps connect to them (the instances app imports none
of them: bulk depends on instances, not the reverse)."""

from dataclasses import dataclass

from django.dispatch import Signal

# Sent by ``rotate_credentials_key`` once every instance is under the first key of
# CREDENTIALS_KEYS. A receiver re-encrypts what its app keeps under the old keys and returns a
# ``Reencrypted``; the command reports each, and fails when one says something is unreadable.
credentials_key_rotated = Signal()


@dataclass(frozen=True)
class Reencrypted:
    count: int  # rewritten under the first key
    what: str  # plural noun of what was rewritten, e.g. "bulk result part(s)"
    unreadable_message: str = ""  # set when some could not be read with any configured key
