"""The query a job's bulk source is asked for, built in this one place: at submit (from the
job about to be stored, to validate it) and at every run (from the stored job), so both see the
same query."""

from bulk.models import BulkJob
from elements.framework.bulk import BulkQuery
from elements.framework.ceql import SelectQuery


def query_of(job: BulkJob, select: SelectQuery) -> BulkQuery:
    """``select``: the job's ``query_text`` parsed (``ceql.parse_select``)."""
    return BulkQuery(
        object_name=job.object_name,
        where=select.where,
        where_text=job.query_text,
        date_from=job.date_from,
        date_to=job.date_to,
    )
