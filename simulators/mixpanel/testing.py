"""Run the simulator as a subprocess (tests, benchmarks).  Standard library only.

with SimulatorProcess() as sim:
    sim.configure(events_per_day=100, profiles={"count": 5000})
    status, headers, body = sim.request("GET", "/api/query/engage?project_id=2002",
                                        auth=sim.sa_auth())
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .state import (
    DEFAULT_API_SECRET,
    DEFAULT_ORGANIZATION_ID,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_TOKEN,
    DEFAULT_SA_SECRET,
    DEFAULT_SA_USERNAME,
)

__all__ = ["REPO_ROOT", "SA_CONFIGURATION", "SIMULATOR_DIR", "SimulatorProcess", "basic_auth"]

SIMULATOR_DIR = Path(__file__).resolve().parent
REPO_ROOT = SIMULATOR_DIR.parents[1]

# A Mixpanel instance configuration for the simulator's seeded service account.
SA_CONFIGURATION = {
    "username": DEFAULT_SA_USERNAME,
    "password": DEFAULT_SA_SECRET,
    "organization_id": DEFAULT_ORGANIZATION_ID,
    "project_id": DEFAULT_PROJECT_ID,
    "project_token": DEFAULT_PROJECT_TOKEN,
}


def basic_auth(user: str, secret: str = "", *, plain: bool = False) -> str:
    """``Authorization`` header value for Basic auth (base64 unless ``plain``)."""
    raw = f"{user}:{secret}"
    if plain:
        return f"Basic {raw}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


class SimulatorProcess:
    """Start the simulator and wait for its LISTENING line.

    ``extra_args`` are CLI flags (``"--rate-limits"``, ``"--profiles", "1000"`` ...).  By default
    (``standalone=True``) the simulator directory is run directly (``python simulators/mixpanel``),
    which imports no parent package; ``standalone=False`` runs ``python -m simulators.mixpanel``.
    """

    def __init__(
        self,
        *extra_args: str,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
        cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        python: str | None = None,
        standalone: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.env = env
        self.python = python or sys.executable
        self.standalone = standalone
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self._stderr_file = None

    # ----------------------------------------------------------------------------------------
    # lifecycle
    # ----------------------------------------------------------------------------------------
    def start(self) -> SimulatorProcess:
        if self.proc is not None:
            return self
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        target = [str(SIMULATOR_DIR)] if self.standalone else ["-m", "simulators.mixpanel"]
        cmd = [
            self.python,
            *target,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            cmd,
            cwd=str(self.cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
        )
        line = self._read_listening_line()
        self.base_url = line.split(" ", 1)[1].strip()
        # Keep draining stdout so a chatty child can never block on a full pipe.
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        return self

    def _read_listening_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.startup_timeout
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail(f"did not print LISTENING within {self.startup_timeout:.1f}s")
                if not sel.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self._fail("exited before printing LISTENING")
                buf += chunk
        finally:
            sel.close()
        line = buf.split(b"\n", 1)[0].decode()
        if not line.startswith("LISTENING http://"):
            self._fail(f"unexpected first stdout line {line!r}")
        return line

    def _drain_stdout(self) -> None:
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        try:
            while proc.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def stderr_text(self) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode("utf-8", "replace")

    def _fail(self, why: str) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        rc = self.proc.returncode if self.proc is not None else None
        raise RuntimeError(f"simulator {why} (rc={rc}); stderr:\n{self.stderr_text()}")

    def stop(self, timeout: float = 5.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None
        return proc.returncode

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_kb(self) -> dict[str, int]:
        """``VmRSS``/``VmHWM`` (kB) of the simulator process, from /proc (Linux)."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
        return out

    # ----------------------------------------------------------------------------------------
    # HTTP helpers (urllib.request; no third-party clients)
    # ----------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def sa_auth(
        username: str = DEFAULT_SA_USERNAME, secret: str = DEFAULT_SA_SECRET, plain: bool = False
    ) -> str:
        return basic_auth(username, secret, plain=plain)

    @staticmethod
    def secret_auth(secret: str = DEFAULT_API_SECRET) -> str:
        return basic_auth(secret, "")

    @staticmethod
    def token_auth(token: str = DEFAULT_PROJECT_TOKEN) -> str:
        return basic_auth(token, "")

    project_id = DEFAULT_PROJECT_ID

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict | list | None = None,
        *,
        headers: dict[str, str] | None = None,
        auth: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a request; returns ``(status, headers, body)`` for every status code."""
        hdrs = dict(headers or {})
        data: bytes | None
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        if auth is not None:
            hdrs["Authorization"] = auth
        req = urllib.request.Request(self.url(path), data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, dict(err.headers.items()), err.read()

    def _control(self, method: str, name: str, payload: Any = None) -> Any:
        status, _, body = self.request(method, f"/__sim__/{name}", payload, timeout=30)
        parsed = json.loads(body) if body else None
        if status != 200:
            raise RuntimeError(f"control {method} {name} failed: {status} {parsed}")
        return parsed

    def reset(self) -> Any:
        return self._control("POST", "reset")

    def configure(self, **config: Any) -> dict:
        return self._control("POST", "config", config)

    def config(self) -> dict:
        return self._control("GET", "config")

    def faults(self, **switches: Any) -> list:
        return self._control("POST", "faults", switches)

    def clear_faults(self) -> Any:
        return self._control("DELETE", "faults")

    def requests(self) -> list[dict]:
        return self._control("GET", "requests")

    def clear_requests(self) -> Any:
        return self._control("DELETE", "requests")

    def imported(self) -> dict:
        return self._control("GET", "imported")

    def tracked(self) -> dict:
        return self._control("GET", "tracked")

    def service_accounts(self) -> list[dict]:
        return self._control("GET", "service-accounts")

    def profile(self, distinct_id: str) -> dict:
        from urllib.parse import quote

        return self._control("GET", "profiles/" + quote(distinct_id, safe=""))
