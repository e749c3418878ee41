from elements.framework.registry import all_elements


def sync_element_catalog(**kwargs):
    """Rewrite the ElementRecord mirror from the definitions (post_migrate)."""
    from elements.models import ElementRecord

    keys = []
    for element in all_elements():
        keys.append(element.key)
        ElementRecord.objects.update_or_create(
            key=element.key,
            defaults={
                "element_id": element.id,
                "name": element.name,
                "hub": element.hub,
                "auth_type": element.auth_type,
                "operation_count": len(element.operations),
                "description": element.description,
            },
        )
    ElementRecord.objects.exclude(key__in=keys).delete()
