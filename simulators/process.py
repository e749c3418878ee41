"""Run a vendor simulator as a subprocess on loopback (tests, benchmarks). Standard library only.

A simulator is a command that binds a port, prints one line ``LISTENING http://<host>:<port>``
on stdout, and serves until SIGTERM. ``SimulatorProcess`` starts it, waits for that line, and
stops it; each simulator's own ``testing.py`` says how it is started (``command()``) and adds
its helpers (``simulators/mixpanel/testing.py``). The element test kit's ``element_simulator``
fixture (``elements/framework/testing.py``) points the element at ``base_url``.
"""

from __future__ import annotations

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

__all__ = ["REPO_ROOT", "SimulatorProcess"]

REPO_ROOT = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """Start a simulator and wait for its LISTENING line; subclasses give ``command()``.

    ``extra_args`` are the simulator's own CLI flags; ``python`` the interpreter that runs it
    (default: this one); ``cwd`` its directory (default: the repository's root).
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
    ) -> None:
        self.host = host
        self.port = port
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.cwd = Path(cwd) if cwd is not None else REPO_ROOT
        self.env = env
        self.python = python or sys.executable
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
        cmd = self.command()
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
        raise RuntimeError(f"{type(self).__name__} {why} (rc={rc}); stderr:\n{self.stderr_text()}")

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

    def command(self) -> list[str]:
        """The argv that starts the simulator on ``self.host``/``self.port``, with
        ``self.extra_args``."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------
    # HTTP (urllib.request; no third-party clients)
    # ----------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

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
