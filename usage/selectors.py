from usage.models import UsageRecord


def usage_list(
    *,
    user_id: int,
    instance_id=None,
    status=None,
    date_from=None,
    date_to=None,
    after_id: int = 0,
    limit: int,
):
    qs = UsageRecord.objects.filter(user_id=user_id, pk__gt=after_id)
    if instance_id is not None:
        qs = qs.filter(instance_id=instance_id)
    if status is not None:
        qs = qs.filter(status=status)
    if date_from is not None:
        qs = qs.filter(created_at__gte=date_from)
    if date_to is not None:
        qs = qs.filter(created_at__lte=date_to)
    return list(qs.order_by("id")[:limit])


def usage_get(*, user_id: int, request_id: str) -> UsageRecord | None:
    return UsageRecord.objects.filter(user_id=user_id, request_id=request_id[:32]).first()
