"""Bulk queries over transformed objects (contract §9): ``select * from customer`` for an
instance whose transformation ``customer`` maps Mixpanel users reads the users source with the
``where`` field names rewritten, and maps every record before the runner writes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

from elements.framework.bulk import BulkQuery, BulkSource, Page
from elements.framework.definition import Call, Element, ElementObject
from elements.framework.mapping import Mapping
from instances.models import Instance
from transformations import selectors


class MappedSource:
    """The vendor object's source, seen through a transformation."""

    def __init__(self, source: BulkSource, mapping: Mapping):
        self.source = source
        self.mapping = mapping

    def vendor_query(self, query: BulkQuery) -> BulkQuery:
        where = query.where
        return replace(
            query,
            object_name=self.mapping.vendor_name,
            where=self.mapping.vendor_expr(where) if where is not None else None,
        )

    def validate(self, query: BulkQuery) -> None:
        validate = getattr(self.source, "validate", None)
        if validate is not None:
            validate(self.vendor_query(query))

    def pages(self, call: Call, query: BulkQuery, checkpoint: dict | None) -> Iterator[Page]:
        pages = self.source.pages(call, self.vendor_query(query), checkpoint)
        try:
            for page in pages:
                records = page.records or [json.loads(line) for line in page.lines()]
                mapped = [self.mapping.from_vendor(r) for r in records]
                yield replace(
                    page,
                    records=mapped,
                    raw=[json.dumps(r, separators=(",", ":")).encode() for r in mapped],
                    ndjson=None,
                    ndjson_records=0,
                    keys=None,
                )
        finally:
            pages.close()


def bulk_source(instance: Instance, element: Element, object_name: str) -> BulkSource | None:
    """The source of ``object_name`` for this instance: the element's own object, or the object
    a transformation of that name maps (None: neither)."""
    own = {o.name: o for o in element.bulk_objects}
    if object_name in own:
        return own[object_name].bulk
    mapping = selectors.mapping_for(instance=instance, element=element, name=object_name)
    if mapping is None or mapping.vendor_name not in own:
        return None
    return MappedSource(own[mapping.vendor_name].bulk, mapping)


def vendor_object(instance: Instance, element: Element, object_name: str) -> ElementObject | None:
    """The element object a bulk job of ``object_name`` reads: its own, or the one a
    transformation of that name maps (None: neither)."""
    own = {o.name: o for o in element.bulk_objects}
    if object_name in own:
        return own[object_name]
    mapping = selectors.mapping_for(instance=instance, element=element, name=object_name)
    return own.get(mapping.vendor_name) if mapping is not None else None


def bulk_object_names(instance: Instance, element: Element) -> list[str]:
    own = [o.name for o in element.bulk_objects]
    return own + [
        n
        for n in selectors.transformed_names(instance=instance)
        if bulk_source(instance, element, n) is not None and n not in own
    ]
