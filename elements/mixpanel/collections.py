"""What the data-management collections share: paging a list Mixpanel returns whole
(cohorts, annotations, lookup tables) as contract §3 pages (``pageSize``, ``nextPage``, the
next cursor in ``Elements-Next-Page-Token``), and date inputs. What a call needs of the
configuration is declared with its operation (``needs.py``), not checked here.
"""

from collections.abc import Mapping
from datetime import date

from platform_core.conf import platform_settings
from platform_core.exceptions import ValidationFailed
from platform_core.pagination import NEXT_PAGE_HEADER, decode_token, encode_token

PAGE_INPUTS = {
    "pageSize": {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "description": "Records per page (default 200).",
    },
    "nextPage": {
        "type": "string",
        "maxLength": 200,
        "description": "The Elements-Next-Page-Token of the previous page.",
    },
}

DAY = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}$",
    "maxLength": 10,
    "description": "A day, YYYY-MM-DD.",
}


def _valid_offset(data: dict) -> bool:
    offset = data["o"]
    return isinstance(offset, int) and not isinstance(offset, bool) and offset > 0


def page_start(inputs: Mapping) -> int:
    """Where the page asked for starts; 400 for a cursor this API did not issue. Read before
    any vendor call."""
    token = inputs.get("nextPage")
    return decode_token(token, _valid_offset)["o"] if token else 0


def page_of(items: list, inputs: Mapping, start: int) -> tuple[list, dict]:
    """The page of a whole list that starts at ``start``, and the next-page header when more
    remain."""
    size = inputs.get("pageSize") or platform_settings.DEFAULT_PAGE_SIZE
    page = items[start : start + size]
    headers = {}
    if start + size < len(items):
        headers[NEXT_PAGE_HEADER] = encode_token({"o": start + size})
    return page, headers


def day_input(inputs: Mapping, name: str) -> date | None:
    """A YYYY-MM-DD input as a date; 400 naming it when it is no real day."""
    value = inputs.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{name} is not a valid day.", errors=[{"field": name, "message": "no such day"}]
        ) from None


def date_range(inputs: Mapping) -> tuple[date | None, date | None]:
    from_date, to_date = day_input(inputs, "from_date"), day_input(inputs, "to_date")
    if from_date and to_date and from_date > to_date:
        raise ValidationFailed(
            "from_date is after to_date.",
            errors=[{"field": "from_date", "message": "must not be after to_date"}],
        )
    return from_date, to_date
