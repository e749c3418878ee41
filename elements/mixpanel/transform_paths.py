"""How Mixpanel's objects take back what they return, for transformations (contract §9).

A ``vendorPath`` addresses a record as the element returns it. A profile is returned as
``{"$distinct_id", "$properties": {...}}`` but written as ``{"$distinct_id", "$set": {...}}`` and
filtered by bare property names; an event is ``{"event", "properties": {...}}`` both ways and
filtered by property name too. Every record also carries ``id`` (its primary key).
"""

PROFILE_ID = "$distinct_id"


def _below(path: str, prefix: str) -> str | None:
    return path[len(prefix) :] if path.startswith(prefix) and len(path) > len(prefix) else None


def profile_write_path(path: str) -> str:
    if path == "id":
        return PROFILE_ID
    below = _below(path, "$properties.")
    return f"$set.{below}" if below is not None else path


def profile_where_field(path: str) -> str:
    if path == "id":
        return PROFILE_ID
    below = _below(path, "$properties.")
    return below if below is not None else path


def event_write_path(path: str) -> str:
    return "properties.$insert_id" if path == "id" else path


def event_where_field(path: str) -> str:
    if path == "id":
        return "$insert_id"
    below = _below(path, "properties.")
    return below if below is not None else path
