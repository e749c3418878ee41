import io
import json

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Organization, TenantUser
from tenants.secrets import hash_secret

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_organization_json_prints_exactly_one_object():
    output = run("create_organization", "Acme", "--email", "ops@acme.test", "--json")
    data = json.loads(output)
    assert set(data) == {"organization_id", "organization_secret", "user_id", "user_secret"}
    assert isinstance(data["organization_id"], int) and isinstance(data["user_id"], int)
    assert len(data["organization_secret"]) >= 43 and len(data["user_secret"]) >= 43
    assert data["organization_secret"] != data["user_secret"]
    org = Organization.objects.get(pk=data["organization_id"])
    user = TenantUser.objects.get(pk=data["user_id"])
    assert user.organization == org and user.email == "ops@acme.test"
    # Stored only as hashes.
    assert org.secret_hash == hash_secret(data["organization_secret"])
    assert user.secret_hash == hash_secret(data["user_secret"])
    assert data["user_secret"] not in repr(list(TenantUser.objects.values()))


def test_create_user_json_has_no_organization_secret():
    org = json.loads(run("create_organization", "Acme", "--email", "a@acme.test", "--json"))
    data = json.loads(
        run("create_user", str(org["organization_id"]), "--email", "b@acme.test", "--json")
    )
    assert set(data) == {"organization_id", "user_id", "user_secret"}
    assert data["organization_id"] == org["organization_id"]


def test_create_user_for_missing_organization_fails_cleanly():
    with pytest.raises(CommandError, match="No organization"):
        run("create_user", "999999", "--email", "b@acme.test")


def test_create_organization_rejects_bad_email():
    with pytest.raises(CommandError, match="Invalid --email"):
        run("create_organization", "Acme", "--email", "not-an-email")


def test_plain_output_shows_secrets_once_with_a_ready_header():
    output = run("create_organization", "Acme", "--email", "a@acme.test")
    assert "shown once" in output and "Authorization: User " in output
