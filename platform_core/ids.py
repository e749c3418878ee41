"""A row's id as it stands in a URL."""

import re

# Digits as the platform writes them: no sign, no leading zero, no whitespace (int() would take
# " 3", "+3" and "003" for 3, so one row would answer to many paths).
_ID = re.compile(r"[1-9][0-9]{0,18}")


def row_id(text) -> int | None:
    """The id ``text`` names (1 to 2**63 - 1: PostgreSQL's bigint), or None."""
    if not isinstance(text, str | int) or isinstance(text, bool):
        return None
    text = str(text)
    if not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value < 2**63 else None
