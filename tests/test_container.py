"""The container image and docker-compose.yml, checked without Docker (this machine has no
engine and no compose plugin): the image's files computed from .dockerignore with docker-py's
matcher, the Dockerfile's build step run as written, and the compose file validated against
the Compose specification (the ``compose-spec`` parser) and cross-checked reference by
reference. The image's files serving real traffic is in test_production_shape.py."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

from tests.production_image import (
    ROOT,
    copy_image_files,
    dockerignore_patterns,
    image_files,
    isolated_env,
    production_python,
)

# A developer's checkout holds these besides the tracked files; none may reach the image.
DEVELOPER_STATE = [
    ".git/config",
    ".venv/bin/python",
    ".venv-production/bin/python",
    "var/db.sqlite3",
    "var/credentials.key",
    "var/media/bulk/1/part-0-0.ndjson",
    "var/broker/queue/message.msg",
    "var/usage-spool/batch.jsonl",
    ".env",
    "db.sqlite3",
    "media/bulk/1/part-0-0.ndjson",
    "bulk/__pycache__/models.cpython-311.pyc",
    ".pytest_cache/README.md",
    ".ruff_cache/CACHEDIR.TAG",
]
# Test-only parts of the repository.
TEST_ONLY = re.compile(
    r"^(tests|bench|\.ci)(/|$)|(^|/)tests(/|$)|^conftest\.py$|^simulators(/|$)"
    r"|^elements/framework/testing\.py$|^elements/[^/]+/conformance\.py$"
    r"|^elements/mixpanel/fixtures(/|$)|^platform_core/test_settings\.py$|^requirements-dev\.txt$"
)


def tracked_files() -> list[str]:
    """The files of the repository (committed or not, but never ignored ones)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return listed.stdout.splitlines()


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A developer's checkout: the tracked files, plus the local state a developer has."""
    root = tmp_path / "checkout"
    for relative in tracked_files() + DEVELOPER_STATE:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ROOT / relative
        if relative in DEVELOPER_STATE or not source.is_file():
            target.write_text("developer state\n")
        else:
            shutil.copy2(source, target)
    return root


def test_the_image_gets_no_developer_state(checkout):
    copied = image_files(checkout)
    assert [p for p in DEVELOPER_STATE if p in copied] == []
    assert not any(p.startswith(("var", ".venv", ".git", "media")) for p in copied)
    assert not any("__pycache__" in p for p in copied)


def test_the_image_gets_no_test_only_part(checkout):
    copied = image_files(checkout)
    assert sorted(p for p in copied if TEST_ONLY.search(p)) == []
    assert {"Dockerfile", ".dockerignore", "docker-compose.yml"}.isdisjoint(copied)
    # COPY skips the two files the builder always receives only when they are listed.
    assert {"Dockerfile", ".dockerignore"} <= set(dockerignore_patterns(checkout))


def test_the_image_gets_every_production_module(checkout):
    """Everything tracked that is neither test-only nor documentation or tooling is copied."""
    copied = image_files(checkout)
    tooling = re.compile(
        r"\.md$|^docs/|^scripts/|^(Dockerfile|docker-compose\.yml|\.dockerignore|\.gitignore"
        r"|pyproject\.toml)$"
    )
    missing = [
        p
        for p in tracked_files()
        if not TEST_ONLY.search(p) and not tooling.search(p) and p not in copied
    ]
    assert missing == []
    assert {"manage.py", "gunicorn.conf.py", "requirements.txt"} <= copied


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_every_file_the_dockerfile_copies_is_in_the_build_context():
    copied = image_files(ROOT)
    sources = [
        source
        for keyword, arguments in dockerfile_instructions()
        if keyword == "COPY"
        for source in shlex.split(arguments)[:-1]
    ]
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert source == "." or source in copied, f"COPY {source}: not in the build context"


def test_the_build_step_leaves_no_key_in_the_image(tmp_path):
    """The Dockerfile's RUN steps after `COPY . .` (but creating the user, which needs root on a
    throwaway system), run as written on the image's files with the production venv."""
    app = copy_image_files(tmp_path / "app")
    python = production_python()
    steps = [
        arguments
        for keyword, arguments in dockerfile_instructions()
        if keyword == "RUN" and "collectstatic" in arguments
    ]
    assert len(steps) == 1
    env = {**isolated_env(), "PATH": f"{python.parent}:{isolated_env().get('PATH', '')}"}
    built = subprocess.run(
        ["sh", "-c", steps[0]], cwd=app, env=env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (app / "var" / "static" / "admin" / "css" / "base.css").is_file()
    assert not (app / "var" / "credentials.key").exists()
    assert sorted(p.name for p in (app / "var").iterdir()) == ["static"]


def test_the_image_creates_the_results_directory_for_its_user():
    dockerfile = dict(dockerfile_instructions())
    assert dockerfile["USER"] == "platform"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    media_root = compose["x-platform-env"]["MEDIA_ROOT"]
    mounts = {
        volume.split(":")[1]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("results:")
    }
    assert mounts == {media_root}
    steps = [a for k, a in dockerfile_instructions() if k == "RUN" and "useradd" in a]
    assert f"mkdir -p {media_root}" in steps[0]
    assert "chown -R platform /app/var" in steps[0]


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    text = (ROOT / "docker-compose.yml").read_text()
    PyCompose.from_yaml(text)  # raises ValueError where the file breaks the specification
    return yaml.safe_load(text)


def test_the_compose_file_follows_the_compose_specification(compose):
    default = {name for name, service in compose["services"].items() if "profiles" not in service}
    assert default == {"postgres", "redis", "migrate", "web", "worker", "beat"}
    # The optional bucket for BULK_STORAGE=s3 (docker compose --profile s3 up).
    assert set(compose["services"]) - default == {"minio", "minio-bucket"}
    assert all(
        compose["services"][name]["profiles"] == ["s3"] for name in ("minio", "minio-bucket")
    )


def test_every_named_volume_is_declared_and_used(compose):
    used = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == set(compose["volumes"])


def test_every_dependency_can_be_waited_for(compose):
    services = compose["services"]
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on an unknown service {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health"
            else:
                assert condition["condition"] == "service_completed_successfully"
                assert "command" in services[target] and "ports" not in services[target]


def test_every_long_running_service_has_a_healthcheck_but_beat(compose):
    for name, service in compose["services"].items():
        if name in ("migrate", "beat", "minio-bucket"):  # one-shots, and beat
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_the_broker_keeps_its_queue_across_a_restart(compose):
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])  # the AOF's directory


# The two forms of variable the compose file uses: ${NAME:-default} and ${NAME:?message}.
VARIABLE = r"\$\{(\w+)(:[-?])([^}]*)\}"


def compose_platform_env(compose, **given) -> dict:
    """The platform's environment as compose interpolates it, with ``given`` as the shell's."""

    def interpolate(value: str) -> str:
        def one(match):
            name, operator, word = match.group(1), match.group(2), match.group(3)
            if name in given and given[name] != "":
                return given[name]
            assert operator == ":-", f"${{{name}}} is required"
            return word

        assert "$" not in re.sub(VARIABLE, "", value), f"an unexpected form in {value}"
        return re.sub(VARIABLE, one, value)

    return {key: interpolate(str(value)) for key, value in compose["x-platform-env"].items()}


def test_the_compose_environment_passes_check_deploy(compose, tmp_path):
    """DEBUG=0, the documented secrets given: Django's deployment check is clean."""
    from tests.test_production_settings import STRONG_SECRET_KEY, TEST_KEY

    with pytest.raises(AssertionError, match="SECRET_KEY"):
        compose_platform_env(compose)  # compose refuses to start without it
    env = compose_platform_env(compose, SECRET_KEY=STRONG_SECRET_KEY, CREDENTIALS_KEYS=TEST_KEY)
    assert env["DEBUG"] == "0"
    checked = subprocess.run(
        [str(production_python()), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **isolated_env(),
            **env,
            "DJANGO_SETTINGS_MODULE": "platform_core.settings",
            "PLATFORM_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_the_compose_bucket_option_loads_with_the_runtime_requirements(compose, tmp_path):
    """BULK_STORAGE=s3 as the compose file passes it: the settings load and the result storage
    is the bucket, in an interpreter with requirements.txt only (django-storages and boto3 are
    runtime dependencies)."""
    from tests.test_production_settings import STRONG_SECRET_KEY, TEST_KEY

    given = {
        "SECRET_KEY": STRONG_SECRET_KEY,
        "CREDENTIALS_KEYS": TEST_KEY,
        "BULK_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": "platform-results",
        "AWS_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_S3_ADDRESSING_STYLE": "path",
    }
    env = compose_platform_env(compose, **given)
    script = (
        "import django; django.setup()\n"
        "from bulk import storage\n"
        "s = storage.result_storage()\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.file_overwrite)"
    )
    loaded = subprocess.run(
        [str(production_python()), "-c", script],
        cwd=ROOT,
        env={
            **isolated_env(),
            **env,
            "DJANGO_SETTINGS_MODULE": "platform_core.settings",
            "PLATFORM_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.split() == ["S3Storage", "platform-results", "http://minio:9000", "False"]
