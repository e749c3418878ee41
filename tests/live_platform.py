"""The platform as a black box: its own database, migrations, a tenant, and gunicorn on a free
loopback port. Used by the load test and the benchmarks; talks only real HTTP.

PostgreSQL when DATABASE_URL points at it (a fresh database is created and dropped), else a
temporary SQLite file.

``start_worker()`` starts a real ``celery -A platform_core worker`` (optionally with beat) with
the same environment as gunicorn, ``start_beat()`` a separate ``celery beat``;
``Worker.kill()`` SIGKILLs its whole process group. Without CELERY_BROKER_URL in ``extra_env``
both use the embedded filesystem broker in the temp dir.

``python`` runs every process (manage.py, gunicorn, celery) from another interpreter's
environment, e.g. a venv with only requirements.txt; such a platform inherits nothing from the
caller's environment but PATH, HOME and the locale, so nothing of the test run leaks into it.
``root`` is the directory the processes run in (the repository, or a copy of the image's files).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# What an isolated platform (another interpreter) takes from the caller's environment.
ISOLATED_INHERITS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
TEST_KEY = "f3qzN8mPq0mGmLqT6S6d2Qk4e5cU9wq8bJ1xH0sYcVg="
# Production refuses a SECRET_KEY shorter than 50 characters.
LIVE_SECRET_KEY = "live-test-secret-key-not-for-production-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LivePlatform:
    def __init__(
        self,
        *,
        mixpanel_base_url: str,
        workers: int | None = None,
        threads: int | None = None,
        extra_env=None,
        python: str | os.PathLike | None = None,
        root: Path = ROOT,
        collect_static: bool = False,
    ):
        """``workers``/``threads``: gunicorn flags; by default gunicorn.conf.py's (as shipped)."""
        self.mixpanel_base_url = mixpanel_base_url
        self.root = Path(root)
        self.python = str(python or sys.executable)
        self.isolated = python is not None
        self.bin_dir = Path(self.python).parent
        self.collect_static = collect_static
        self.workers = workers
        self.threads = threads
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="live-platform-"))
        self.db_name = None
        self.proc = None
        self.log = None
        self.workers_started: list[Worker] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def env(self) -> dict:
        inherited = (
            {k: v for k, v in os.environ.items() if k in ISOLATED_INHERITS}
            if self.isolated
            else os.environ
        )
        env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "platform_core.settings",
            "DEBUG": "0",
            "SECRET_KEY": LIVE_SECRET_KEY,
            # Plain HTTP on loopback: no redirect to HTTPS.
            "SECURE_SSL_REDIRECT": "0",
            "CREDENTIALS_KEYS": TEST_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "MIXPANEL_BASE_URL": self.mixpanel_base_url,
            "PLATFORM_VAR_DIR": str(self.tmp),  # also holds STATIC_ROOT
            "DATABASE_URL": self.database_url,
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        env.pop("USAGE_LOG_MODE", None)
        return env

    def _make_database(self) -> str:
        configured = os.environ.get("DATABASE_URL", "")
        if not configured.startswith("postgres"):
            return f"sqlite:///{self.tmp / 'live.sqlite3'}"
        import psycopg

        self.db_name = f"live_{uuid.uuid4().hex[:10]}"
        admin = urlsplit(configured)
        with psycopg.connect(configured, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self._admin_url = configured
        return urlunsplit(admin._replace(path=f"/{self.db_name}"))

    def manage(self, *args) -> str:
        result = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> LivePlatform:
        self.database_url = self._make_database()
        self.manage("migrate", "--noinput")
        if self.collect_static:  # as production does: WhiteNoise serves STATIC_ROOT
            self.manage("collectstatic", "--noinput")
        tenant = json.loads(
            self.manage("create_organization", "Live", "--email", "live@x.test", "--json")
        )
        self.user_secret = tenant["user_secret"]
        self.organization_secret = tenant["organization_secret"]
        gunicorn = self.bin_dir / "gunicorn"
        self.log = open(self.tmp / "gunicorn.log", "wb")  # noqa: SIM115 (closed in stop())
        sizing = []
        if self.workers is not None:
            sizing += ["--workers", str(self.workers)]
        if self.threads is not None:
            sizing += ["--threads", str(self.threads)]
        self.proc = subprocess.Popen(
            [
                str(gunicorn),
                "--bind",
                f"127.0.0.1:{self.port}",
                *sizing,
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base_url + "/elements/api-v2/elements/keys", timeout=1)
            except urllib.error.HTTPError:
                return self  # answering (401): up
            except OSError as exc:
                if self.proc.poll() is not None:
                    log = (self.tmp / "gunicorn.log").read_text()[-3000:]
                    raise RuntimeError(f"gunicorn exited:\n{log}") from exc
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not come up in 30 s")

    def start_worker(
        self,
        *,
        concurrency: int = 1,
        beat: bool = True,
        extra_env: dict | None = None,
        ready_timeout: float = 60,
        hostname: str | None = None,
    ) -> Worker:
        """A ``celery -A platform_core worker`` subprocess (with embedded beat unless
        ``beat=False``), in its own process group; returns once it is ready."""
        number = len(self.workers_started) + 1
        celery = self.bin_dir / "celery"
        log_path = self.tmp / f"worker-{number}.log"
        cmd = [
            str(celery),
            "-A",
            "platform_core",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--hostname",
            hostname or f"live{number}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            cmd += ["--beat", "--schedule", str(self.tmp / f"beat-schedule-{number}")]
        return self._spawn(cmd, log_path, b" ready.", extra_env, ready_timeout)

    def start_beat(self, *, ready_timeout: float = 60) -> Worker:
        """A separate ``celery -A platform_core beat`` subprocess; returns once it started."""
        number = len(self.workers_started) + 1
        cmd = [
            str(self.bin_dir / "celery"),
            "-A",
            "platform_core",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(self.tmp / f"beat-schedule-{number}"),
        ]
        return self._spawn(
            cmd, self.tmp / f"beat-{number}.log", b"beat: Starting...", None, ready_timeout
        )

    def _spawn(self, cmd, log_path: Path, ready_mark: bytes, extra_env, ready_timeout) -> Worker:
        """A celery process in its own process group, once its log shows ``ready_mark``."""
        log = open(log_path, "wb")  # noqa: SIM115 (closed by Worker)
        proc = subprocess.Popen(
            cmd,
            cwd=self.root,
            env={**self.env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = Worker(proc, log, log_path)
        self.workers_started.append(process)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if ready_mark in log_path.read_bytes():
                return process
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[3]} exited:\n{process.log_text()[-3000:]}")
            time.sleep(0.1)
        process.kill()
        raise RuntimeError(f"{cmd[3]} not ready in {ready_timeout} s:\n{process.log_text()}")

    def stop(self) -> None:
        for worker in self.workers_started:
            worker.stop()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        if self.db_name:
            import psycopg

            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LivePlatform:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- helpers -----------------------------------------------------------------------------

    @property
    def platform_auth(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"

    def element_auth(self, token: str) -> str:
        return f"User {self.user_secret}, Element {token}"

    def create_instance(self, configuration: dict) -> dict:
        body = json.dumps(
            {"element": {"key": "mixpanel"}, "name": "live", "configuration": configuration}
        ).encode()
        request = urllib.request.Request(
            self.base_url + "/elements/api-v2/instances",
            data=body,
            method="POST",
            headers={"Authorization": self.platform_auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


class Worker:
    """A running ``celery worker`` (main process, pool children, maybe beat) or ``celery beat``."""

    def __init__(self, proc: subprocess.Popen, log, log_path: Path):
        self.proc = proc
        self.log = log
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def child_pids(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    @staticmethod
    def memory_kb(pid: int) -> dict[str, int]:
        out = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
        except OSError:
            pass
        return out

    def peak_rss_kb(self) -> dict[int, int]:
        """VmHWM (kB) of each child process (the pool processes that run the tasks)."""
        return {pid: self.memory_kb(pid).get("VmHWM", 0) for pid in self.child_pids()}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole worker: main process, pool children and beat, at once."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it takes longer than ``timeout``."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        if self.alive():
            self.kill()
        else:
            # Pool children or beat left behind by the main process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.log.close()
