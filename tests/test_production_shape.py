"""The production install, end to end: a virtualenv with ``requirements.txt`` alone (as the
Dockerfile installs it), then gunicorn (gunicorn.conf.py), a ``celery worker`` and a separate
``celery beat`` run from it with DEBUG=0 on Redis and PostgreSQL, serving a tenant, an instance,
an element call and a bulk job.

The development requirements bring packages of their own (pytest brings ``packaging``); this test
is what notices when production needs one of them and requirements.txt does not pin it.

The virtualenv is kept in ``.venv-production`` and rebuilt when requirements.txt changes (pip
installs from its local wheel cache, so a rebuild takes seconds). With CI set, a missing
PostgreSQL or Redis fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from simulators.mixpanel.testing import SA_CONFIGURATION, SimulatorProcess
from tests.live_platform import LivePlatform
from tests.production_image import ROOT, copy_image_files, isolated_env, production_python
from tests.test_bulk_live import Api, drop_keys, redis_url, require

pytestmark = pytest.mark.integration

PROFILES = 1200  # two engage pages of the simulator (its page size is 1000)


def compose_healthcheck(service: str) -> list[str]:
    """The command of a docker-compose.yml healthcheck, as the container would run it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, *command = compose["services"][service]["healthcheck"]["test"]
    return command if kind == "CMD" else ["sh", "-c", command[0].replace("$$", "$")]


@pytest.fixture(scope="module")
def python() -> Path:
    python = production_python()
    checked = subprocess.run(
        [python, "-m", "pip", "check", "--disable-pip-version-check"],
        env=isolated_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The venv really is production's: no test-only package in it.
    for dev_only in ("pytest", "selenium"):
        found = subprocess.run(
            [python, "-c", f"import {dev_only}"], env=isolated_env(), capture_output=True
        )
        assert found.returncode != 0, f"{dev_only} is importable in the production venv"
    return python


def test_the_production_install_runs_web_worker_and_beat_end_to_end(python, tmp_path):
    require(
        os.environ.get("DATABASE_URL", "").startswith("postgres"),
        "the production shape runs on PostgreSQL: DATABASE_URL must point at it",
    )
    broker = redis_url()
    prefix = f"production-shape-{uuid.uuid4().hex[:8]}:"
    env = {
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_KEY_PREFIX": prefix,
        # Beat's purge every second, so the test sees one reach the worker.
        "BULK_PURGE_INTERVAL": "1",
    }
    try:
        with (
            SimulatorProcess(python=str(python), standalone=False, env=isolated_env()) as sim,
            # Run from the files the image gets (no tests, no simulator), as the image runs.
            LivePlatform(
                mixpanel_base_url=sim.base_url,
                python=python,
                root=copy_image_files(tmp_path / "app"),
                extra_env=env,
            ) as live,
        ):
            # Named as in a container: celery@<the container's HOSTNAME>.
            worker_host = f"production-shape-{uuid.uuid4().hex[:6]}"
            worker = live.start_worker(beat=False, hostname=f"celery@{worker_host}")
            beat = live.start_beat()
            sim.configure(profiles={"count": PROFILES})

            # A tenant (created by `manage.py create_organization --json` in start()) and an
            # instance, its credentials checked against the simulator.
            instance = live.create_instance(SA_CONFIGURATION)
            assert instance["configuration"]["password"] == "********"

            # An element call through gunicorn to the simulator.
            request = urllib.request.Request(
                live.base_url + "/elements/api-v2/hubs/general/service-accounts",
                headers={"Authorization": live.element_auth(instance["token"])},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
                accounts = json.loads(response.read())
            assert SA_CONFIGURATION["username"] in json.dumps(accounts)

            # The admin's login page: templates and sessions in production settings.
            with urllib.request.urlopen(live.base_url + "/admin/login/", timeout=30) as response:
                assert response.status == 200

            # A bulk job: queued on Redis, run by the worker, its result downloaded.
            api = Api(live, instance["token"])
            job = api.submit("select * from users")
            final = api.wait(job, timeout=90)
            assert final["status"] == "COMPLETED", (final, worker.log_text()[-3000:])
            assert final["recordsCount"] == PROFILES
            lines = api.ndjson(job, "users").splitlines()
            assert len(lines) == PROFILES
            assert len({json.loads(line)["$distinct_id"] for line in lines}) == PROFILES

            # Beat, a process of its own, schedules the result purge; the worker runs it.
            deadline = time.monotonic() + 30
            swept = re.compile(rb"Task bulk\.purge_results\[[^\]]+\] succeeded")
            while not swept.search(worker.log_path.read_bytes()):
                assert time.monotonic() < deadline, (beat.log_text(), worker.log_text())
                time.sleep(0.2)
            assert beat.alive() and worker.alive()

            # The compose healthchecks of web and worker, run against these processes.
            run_env = {**live.env(), "PATH": f"{python.parent}:{os.environ['PATH']}"}
            web_check = [
                str(python) if part == "python" else part.replace("8000", str(live.port))
                for part in compose_healthcheck("web")
            ]
            assert subprocess.run(web_check, env=run_env, timeout=30).returncode == 0
            worker_check = compose_healthcheck("worker")
            worker_env = {**run_env, "HOSTNAME": worker_host}
            checked = subprocess.run(
                worker_check, env=worker_env, cwd=live.root, capture_output=True, timeout=60
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        drop_keys(broker, prefix)
