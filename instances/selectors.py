"""Reads of instances, always scoped to their owner."""

from functools import cache

from django.db import connection
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

from instances.models import Instance
from instances.token_cache import token_cache
from platform_core.exceptions import NotFound
from platform_core.ids import row_id
from tenants.models import Organization, TenantUser
from tenants.secrets import hash_secret


def _columns(model, alias: str) -> tuple[list[str], str, list]:
    """Attribute names, the SELECT list, and the database converters of the columns that have
    any, by position (the ones the ORM's compiler would apply: JSON decoding, aware datetimes,
    SQLite booleans...)."""
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    converters = []
    for position, f in enumerate(fields):
        col = f.get_col(model._meta.db_table)
        funcs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if funcs:
            converters.append((position, col, funcs))
    columns = ", ".join(f"{alias}.{quote(f.column)}" for f in fields)
    return [f.attname for f in fields], columns, converters


def _build(model, names, converters, values):
    """The model of a row, as ``Model.from_db`` makes it. Without ``Model.__init__``, as
    unpickling does, unless something listens to its signals: ``__init__`` was most of the
    cost of building the three models of an element call."""
    values = list(values)
    for position, col, funcs in converters:
        value = values[position]
        for convert in funcs:
            value = convert(value, col, connection)
        values[position] = value
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(connection.alias, names, values)
    built = model.__new__(model)
    built.__dict__.update(zip(names, values, strict=True))
    built._state = ModelState()
    built._state.adding = False
    built._state.db = connection.alias
    return built


@cache
def _token_lookup():
    quote = connection.ops.quote_name
    parts = [(model, *_columns(model, alias)) for model, alias in _JOINED]
    select = ", ".join(columns for _, _, columns, _ in parts)
    sql = (
        f"SELECT {select} FROM {quote(Instance._meta.db_table)} i "
        f"JOIN {quote(TenantUser._meta.db_table)} u ON u.id = i.user_id "
        f"JOIN {quote(Organization._meta.db_table)} o ON o.id = u.organization_id "
        "WHERE i.token_hash = %s"
    )
    return [(model, names, converters) for model, names, _, converters in parts], sql


_JOINED = ((Instance, "i"), (TenantUser, "u"), (Organization, "o"))


def instance_by_token(token: str) -> Instance | None:
    """The instance a token names, with its user and organization: one indexed query, or none
    when this process's token cache holds the row (``instances/token_cache.py``).

    Hand-written SQL because this runs on every element call, and building the same
    select_related query through the ORM costs more than the round trip itself. Models are
    built afresh from the row on every call, so no two requests share a mutable object.
    """
    token_hash = hash_secret(token)
    parts, sql = _token_lookup()
    cache = token_cache()
    row = cache.get(token_hash) if cache is not None else None
    if row is None:
        generation = cache.generation() if cache is not None else None
        with connection.cursor() as cursor:
            cursor.execute(sql, [token_hash])
            row = cursor.fetchone()
        if row is None:
            return None
        if cache is not None:
            cache.put(token_hash, tuple(row), generation)
    objects, start = [], 0
    for model, names, converters in parts:
        objects.append(_build(model, names, converters, row[start : start + len(names)]))
        start += len(names)
    instance, user, organization = objects
    user.organization = organization
    instance.user = user
    return instance


def instance_get(*, user: TenantUser, instance_id) -> Instance:
    """The user's instance, or 404 exactly as for an id that does not exist."""
    pk = row_id(instance_id)
    instance = None
    if pk is not None:
        instance = Instance.objects.filter(user=user, pk=pk).first()
    if instance is None:
        raise NotFound(f"No instance with id {str(instance_id)[:40]}.")
    return instance


def instance_list(
    *,
    user: TenantUser,
    tags: list[str] | None = None,
    search_text: str | None = None,
    element_key: str | None = None,
    after_id: int = 0,
    limit: int,
) -> list[Instance]:
    qs = Instance.objects.filter(user=user, pk__gt=after_id)
    if element_key:
        qs = qs.filter(element_key=element_key)
    if search_text:
        qs = qs.filter(name__icontains=search_text) | qs.filter(element_key__icontains=search_text)
    instances = list(qs.order_by("id"))
    if tags:
        # Tags live in a JSON list; filter in Python so SQLite and PostgreSQL behave alike.
        wanted = set(tags)
        instances = [i for i in instances if wanted.issubset(i.tags)]
    return instances[:limit]
