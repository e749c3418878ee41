"""Reads of instances, always scoped to their owner."""

from instances.models import Instance
from platform_core.exceptions import NotFound
from tenants.models import TenantUser
from tenants.secrets import hash_secret


def instance_by_token(token: str) -> Instance | None:
    # order_by() drops the model's default ordering: a unique lookup needs no ORDER BY.
    found = list(
        Instance.objects.select_related("user__organization")
        .filter(token_hash=hash_secret(token))
        .order_by()[:1]
    )
    return found[0] if found else None


def instance_get(*, user: TenantUser, instance_id) -> Instance:
    """The user's instance, or 404 exactly as for an id that does not exist."""
    try:
        pk = int(instance_id)
    except (TypeError, ValueError):
        pk = None
    instance = None
    if pk is not None and 0 < pk < 2**63:
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
