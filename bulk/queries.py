"""The query a job's bulk source is asked for, built in this one place: at submit (from the
job about to be stored, to validate it) and at every run (from the stored job), so both see the
same query."""

from bulk.models import BulkJob
from elements.framework.bulk import BulkQuery
from elements.framework.ceql import SelectQuery
from elements.framework.definition import ElementObject
from elements.framework.incremental import latest, split_cursor
from elements.framework.registry import element_by_key


def bulk_object(job: BulkJob) -> ElementObject | None:
    element = element_by_key(job.element_key)
    if element is None:
        return None
    return next((o for o in element.bulk_objects if o.name == job.object_name), None)


def query_of(job: BulkJob, select: SelectQuery) -> BulkQuery:
    """``select``: the job's ``query_text`` parsed (``ceql.parse_select``). The ``where``'s
    condition on the object's cursor field becomes ``since`` (with ``from``); raises
    ``incremental.CursorError`` (a BulkQueryError) for a cursor condition that cannot run."""
    obj = bulk_object(job)
    since, where = None, select.where
    if obj is not None:
        since, where = split_cursor(select.where, obj.cursor_field, obj.cursor_aliases)
    return BulkQuery(
        object_name=job.object_name,
        where=where,
        where_text=job.query_text,
        date_from=job.date_from,
        date_to=job.date_to,
        since=latest(since, job.date_from),
    )
