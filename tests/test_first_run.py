"""A newcomer's first run, on a fresh clone: the README's commands as written, and the demo.

The clone is ``git clone`` of this checkout's HEAD (commit first: uncommitted changes are not in
it) with ``.venv`` symlinked to this checkout's, so nothing is installed. Every command runs in a
fresh ``bash`` whose environment is what a new terminal has (PATH, HOME, LANG) plus only the
variables the README told the user to export; never this process's DATABASE_URL, CI or DEBUG.
The platform listens on a free port instead of 8000: the only change made to the commands.

README blocks are the ```sh fences of README.md, run in order, one command at a time, unless the
line before the fence is a marker:

- ``<!-- readme-test: background -->``  the server: started once, stopped with Ctrl-C (SIGINT to
  its process group) at the end;
- ``<!-- readme-test: interactive -->``  run with no terminal on stdin (it must start and exit 0);
- ``<!-- readme-test: skip REASON -->``  not run (the test suite itself, benchmarks).

In an ``export`` line, ``<name>`` stands for the value of ``name`` in the JSON printed most
recently (``export TOKEN=<token>``). A command commented ``# repeat until it says TEXT`` is
repeated until its output contains TEXT. ``curl`` fails on an HTTP error status (a shim adds
``--fail-with-body``), so a 4xx or 5xx fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.live_platform import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*readme-test:\s*(background|interactive|skip)\b[^>]*-->")
FENCE = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
PLACEHOLDER = re.compile(r"<([A-Za-z_]+)>")
REPEAT = re.compile(r"#\s*repeat until it says (.+)$")


# --- the README, as data -----------------------------------------------------------------------


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(kind, body) of every ```sh block in order; kind is run, background, interactive, skip."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = MARKER.search(before[-1]) if before else None
        blocks.append((marker.group(1) if marker else "run", match.group(1)))
    return blocks


def complete(command: str) -> bool:
    """Whether bash reads ``command`` as complete (no open quote, no trailing backslash)."""
    if command.rstrip().endswith("\\"):
        return False
    parsed = PLACEHOLDER.sub("x", command)  # <name> would read as redirections
    checked = subprocess.run(["bash", "-n", "-c", parsed], capture_output=True, timeout=10)
    return checked.returncode == 0


def commands_of(block: str) -> list[str]:
    """A block's commands as a terminal reads them, one per complete line or run of lines;
    comment-only and blank lines between commands dropped."""
    commands, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if complete(current):
            commands.append(current.rstrip("\n"))
            current = ""
    assert not current, f"an unfinished command in the README: {current!r}"
    return commands


def test_the_readme_is_parsed_as_this_test_expects():
    blocks = readme_blocks(README.read_text())
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("background") == 1 and "bash scripts/run.sh" in dict(blocks)["background"]
    assert kinds.count("run") >= 5
    assert commands_of("a \\\n  b  # c\n# only a comment\n\nd '\n'") == [
        "a \\\n  b  # c",
        "d '\n'",
    ]


# --- a fresh clone and fresh shells ------------------------------------------------------------


class Clone:
    def __init__(self, path: Path, home: Path, shim: Path):
        self.path = path
        self.home = home
        self.shim = shim

    def environ(self, **exported: str) -> dict:
        """A new terminal's environment, plus what the README said to export."""
        return {
            "PATH": f"{self.shim}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            **exported,
        }

    def bash(self, command: str, env: dict, timeout: float = 120, stdin=None):
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
        )


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Clone:
    base = tmp_path_factory.mktemp("first-run")
    path = base / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True, timeout=120)
    (path / ".venv").symlink_to(ROOT / ".venv")
    home = base / "home"
    home.mkdir()
    shim = base / "bin"
    shim.mkdir()
    real_curl = shutil.which("curl")
    assert real_curl, "the README's commands need curl"
    (shim / "curl").write_text(f'#!/bin/sh\nexec {real_curl} --fail-with-body -sS "$@"\n')
    (shim / "curl").chmod(0o755)
    return Clone(path, home, shim)


class Server:
    """A command started in its own process group, as in a terminal of its own."""

    def __init__(self, clone: Clone, command: str, env: dict, log: Path):
        self.log_path = log
        self.log = open(log, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=clone.path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None:
                pytest.fail(f"exited ({self.proc.returncode}) before {text!r}:\n{out[-4000:]}")
            time.sleep(0.3)
        pytest.fail(f"no {text!r} in {timeout} s:\n{self.output()[-4000:]}")

    def members(self) -> list[int]:
        """Processes still in the server's process group."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = (proc / "stat").read_text()
                    fields = stat.rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                        pids.append(int(proc.name))
        return pids

    def ctrl_c(self, timeout: float = 60) -> None:
        """What Ctrl-C in its terminal does: SIGINT to the whole foreground process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.proc.poll() is None or self.members()):
            time.sleep(0.3)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.log.close()


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def resolve_export(command: str, outputs: list[dict]) -> str:
    def value(match):
        name = match.group(1)
        for output in reversed(outputs):
            if name in output:
                return str(output[name])
        pytest.fail(f"{command!r}: no {name!r} in any JSON printed so far")

    return PLACEHOLDER.sub(value, command)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_the_readme_commands_work_as_written_in_fresh_shells(clone, tmp_path):
    port = free_port()
    text = README.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    exported: dict[str, str] = {}
    outputs: list[dict] = []
    server = None
    try:
        for kind, block in readme_blocks(text):
            if kind == "skip":
                continue
            if kind == "background":
                assert server is None, "one server block"
                env = clone.environ(PORT=str(port))
                server = Server(clone, block.strip(), env, tmp_path / "server.log")
                server.wait_for("Stop with Ctrl-C.")
                continue
            for command in commands_of(block):
                if command.startswith("export "):
                    command = resolve_export(command, outputs)
                    names = re.findall(r"\b([A-Z_][A-Z0-9_]*)=", command)
                    shown = clone.bash(
                        f"{command}\nprintf '%s\\0' " + " ".join(f'"${n}"' for n in names),
                        clone.environ(**exported),
                    )
                    assert shown.returncode == 0, (command, shown.stderr)
                    exported.update(zip(names, shown.stdout.split("\0")[:-1], strict=True))
                    continue
                repeat = REPEAT.search(command)
                deadline = time.monotonic() + 90
                while True:
                    done = clone.bash(command, clone.environ(**exported))
                    assert done.returncode == 0, (
                        f"{command}\nexit {done.returncode}\n{done.stdout[-2000:]}\n"
                        f"{done.stderr[-2000:]}"
                        + (f"\nserver:\n{server.output()[-3000:]}" if server else "")
                    )
                    if not repeat or repeat.group(1).strip() in done.stdout:
                        break
                    assert time.monotonic() < deadline, (command, done.stdout)
                    time.sleep(1)
                assert "Traceback" not in done.stdout + done.stderr, (command, done.stderr)
                with contextlib.suppress(ValueError):
                    parsed = json.loads(done.stdout)
                    if isinstance(parsed, dict):
                        outputs.append(parsed)
                if kind == "interactive":
                    assert "ImproperlyConfigured" not in done.stderr
        assert server is not None and exported, "the README started a server and exported values"
        assert {"USER_SECRET", "ORG_SECRET", "TOKEN"} <= set(exported)
    finally:
        if server:
            server.ctrl_c()
            server.kill()


@pytest.mark.integration
def test_the_demo_answers_through_the_platform_and_stops_with_ctrl_c(clone, tmp_path):
    port = free_port()
    demo = Server(
        clone, "bash scripts/run.sh --demo", clone.environ(PORT=str(port)), tmp_path / "demo.log"
    )
    try:
        out = demo.wait_for("Stop with Ctrl-C.")
        commands = [line for line in out.splitlines() if line.startswith("curl ")]
        assert len(commands) >= 6, out
        dallas = next(c for c in commands if "Dallas" in c)
        assert f"127.0.0.1:{port}/" in dallas and "Element " in dallas
        simulator = re.search(r"Mixpanel simulator on (http://\S+)", out).group(1)

        # A printed command, pasted as it is: 200, and Dallas profiles from the simulator.
        answer = clone.bash(
            dallas.replace("curl ", "curl -w '%{stderr}%{http_code}' ", 1), clone.environ()
        )
        assert answer.returncode == 0 and answer.stderr.strip() == "200", answer
        profiles = json.loads(answer.stdout)
        assert profiles and {p["$properties"]["$city"] for p in profiles} == {"Dallas"}
        track = next(c for c in commands if "Demo click" in c)
        assert json.loads(clone.bash(track, clone.environ()).stdout)["status"] == 1

        # A second run.sh on the same port refuses at once, and the first keeps serving.
        started = time.monotonic()
        second = clone.bash("bash scripts/run.sh", clone.environ(PORT=str(port)), timeout=30)
        assert second.returncode != 0 and f"port {port} is already in use" in second.stderr
        assert time.monotonic() - started < 10
        assert clone.bash(dallas, clone.environ()).returncode == 0

        demo.ctrl_c()
        assert demo.proc.poll() is not None and demo.members() == [], demo.output()[-3000:]
        assert port_is_free(port) and port_is_free(int(simulator.rsplit(":", 1)[1]))

        # Again: the same demo tenant, new secrets; the old token no longer works.
        again = Server(
            clone,
            "bash scripts/run.sh --demo",
            clone.environ(PORT=str(port)),
            tmp_path / "again.log",
        )
        try:
            rerun = again.wait_for("Stop with Ctrl-C.")
            new_dallas = next(line for line in rerun.splitlines() if "Dallas" in line)
            assert new_dallas != dallas
            assert clone.bash(new_dallas, clone.environ()).returncode == 0
            stale = clone.bash(dallas, clone.environ())
            assert stale.returncode != 0 and "401" in stale.stderr + stale.stdout
            assert re.search(r"\(id (\d+)\)", rerun).group(1) == re.search(
                r"\(id (\d+)\)", out
            ).group(1)
        finally:
            again.ctrl_c()
            again.kill()
    finally:
        demo.ctrl_c()
        demo.kill()
