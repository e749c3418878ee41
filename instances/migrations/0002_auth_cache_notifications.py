"""PostgreSQL triggers that tell every process's token cache what to forget
(instances/token_cache.py). Nothing on other databases, which have no cache."""

from django.db import migrations

CHANNEL = "platform_auth_changed"  # instances.token_cache.CHANNEL, frozen here as migrations are

FORWARD = f"""
CREATE FUNCTION platform_auth_forget_instance() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', OLD.token_hash);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION platform_auth_forget_everything() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '*');
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER platform_auth_instance_changed
    AFTER UPDATE OR DELETE ON instances_instance
    FOR EACH ROW EXECUTE FUNCTION platform_auth_forget_instance();
CREATE TRIGGER platform_auth_instance_truncated
    AFTER TRUNCATE ON instances_instance
    FOR EACH STATEMENT EXECUTE FUNCTION platform_auth_forget_everything();
CREATE TRIGGER platform_auth_user_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON tenants_tenantuser
    FOR EACH STATEMENT EXECUTE FUNCTION platform_auth_forget_everything();
CREATE TRIGGER platform_auth_organization_changed
    AFTER UPDATE OR DELETE OR TRUNCATE ON tenants_organization
    FOR EACH STATEMENT EXECUTE FUNCTION platform_auth_forget_everything();
"""

BACKWARD = """
DROP TRIGGER platform_auth_organization_changed ON tenants_organization;
DROP TRIGGER platform_auth_user_changed ON tenants_tenantuser;
DROP TRIGGER platform_auth_instance_truncated ON instances_instance;
DROP TRIGGER platform_auth_instance_changed ON instances_instance;
DROP FUNCTION platform_auth_forget_everything();
DROP FUNCTION platform_auth_forget_instance();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0001_initial"),
        ("tenants", "0002_api_user_verbose_name"),
    ]

    operations = [migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD))]
