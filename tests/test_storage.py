"""What is stored: no credential, secret or token in plain text; key rotation (contract §3, §8)."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from conftest import SA_CONFIGURATION, SIM_API_SECRET
from platform_core.conf import platform_settings

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

BASE = "/elements/api-v2"


def dump_every_table() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.append(repr(cursor.fetchall()))
    return "\n".join(chunks)


def make_instances(tenant, n=3):
    created = []
    for i in range(n):
        config = (
            {**SA_CONFIGURATION, "event.notification.signature.key": f"sign-key-{i}-abcdef"}
            if i % 2 == 0
            else {"username": SIM_API_SECRET}
        )
        response = tenant.client().post(
            f"{BASE}/instances",
            {"element": {"key": "mixpanel"}, "name": f"i{i}", "configuration": config},
            format="json",
        )
        assert response.status_code == 200, response.content
        created.append(response.json())
    return created


def test_a_dump_of_every_table_holds_no_secret_in_plain_text(tenant, sim):
    created = make_instances(tenant)
    dump = dump_every_table()
    secrets = [
        tenant.user_secret,
        tenant.organization_secret,
        SA_CONFIGURATION["username"],
        SA_CONFIGURATION["password"],
        SA_CONFIGURATION["project_token"],
        SIM_API_SECRET,
        "sign-key-0-abcdef",
    ] + [c["token"] for c in created]
    for secret in secrets:
        assert secret not in dump


def test_rotate_credentials_key_then_drop_the_old_key(tenant, sim):
    created = make_instances(tenant, n=4)
    old_keys = list(platform_settings.CREDENTIALS_KEYS)
    new_key = Fernet.generate_key().decode()

    with override_settings(PLATFORM={"CREDENTIALS_KEYS": [new_key, *old_keys]}):
        out = io.StringIO()
        call_command("rotate_credentials_key", stdout=out)
        assert "4 instance" in out.getvalue()

    with override_settings(PLATFORM={"CREDENTIALS_KEYS": [new_key]}):
        for instance in created:
            got = tenant.client().get(f"{BASE}/instances/{instance['id']}")
            assert got.status_code == 200 and got.json()["token"] == instance["token"]
            ping = tenant.element_client(instance["token"]).get(f"{BASE}/hubs/general/ping")
            assert ping.status_code == 200, ping.content

    # The old key alone can no longer read anything.
    with override_settings(PLATFORM={"CREDENTIALS_KEYS": old_keys}):
        response = tenant.client().get(f"{BASE}/instances/{created[0]['id']}")
        assert response.status_code == 500
        assert set(response.json()) == {"requestId", "message"}


def test_rotation_with_a_missing_key_changes_nothing(tenant, sim):
    make_instances(tenant, n=2)
    before = dump_every_table()
    with (
        override_settings(PLATFORM={"CREDENTIALS_KEYS": [Fernet.generate_key().decode()]}),
        pytest.raises(CommandError, match="Nothing was changed"),
    ):
        call_command("rotate_credentials_key", stdout=io.StringIO())
    assert dump_every_table() == before
