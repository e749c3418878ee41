"""What production runs, reproduced without Docker (this machine has no engine): the files the
Dockerfile's ``COPY . .`` puts in the image (the build context computed from ``.dockerignore``
with docker-py's own matcher) and a virtualenv holding ``requirements.txt`` alone, as the
Dockerfile's ``pip install`` makes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from docker.utils.build import PatternMatcher

from tests.live_platform import ISOLATED_INHERITS

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_VENV = ROOT / ".venv-production"


def dockerignore_patterns(root: Path = ROOT) -> list[str]:
    """The rules of ``.dockerignore``, read as docker-py reads them."""
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def image_files(root: Path = ROOT) -> set[str]:
    """Every path (file or directory, relative to ``root``) that ``COPY . .`` copies."""
    patterns = dockerignore_patterns(root)
    copied = set(PatternMatcher(patterns).walk(str(root)))
    # docker-py keeps .dockerignore in every context (the builder reads it); COPY skips it when
    # it is listed, as it skips the Dockerfile (Docker's documented rule).
    if ".dockerignore" in patterns:
        copied.discard(".dockerignore")
    return copied


def copy_image_files(destination: Path, root: Path = ROOT) -> Path:
    """A directory holding what the image's /app holds after ``COPY . .``."""
    for relative in sorted(image_files(root)):
        source = root / relative
        target = destination / relative
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def isolated_env() -> dict:
    """The environment a production process gets from the caller: PATH, HOME, the locale."""
    return {k: v for k, v in os.environ.items() if k in ISOLATED_INHERITS}


def production_python() -> Path:
    """The python of a virtualenv holding requirements.txt and nothing else.

    Kept in ``.venv-production`` and rebuilt when requirements.txt changes (pip installs from
    its local wheel cache: a rebuild takes seconds)."""
    python = PRODUCTION_VENV / "bin" / "python"
    stamp = PRODUCTION_VENV / ".requirements.txt"
    requirements = (ROOT / "requirements.txt").read_bytes()
    if python.exists() and stamp.exists() and stamp.read_bytes() == requirements:
        return python
    shutil.rmtree(PRODUCTION_VENV, ignore_errors=True)
    # From inside the development venv, `-m venv` still builds on the base interpreter: none of
    # the development packages are visible in the new one.
    subprocess.run([sys.executable, "-m", "venv", str(PRODUCTION_VENV)], check=True, timeout=120)
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + ["-r", "requirements.txt"],
        cwd=ROOT,
        env={**isolated_env(), **{k: v for k, v in os.environ.items() if k.startswith("PIP_")}},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"pip install -r requirements.txt failed:\n{installed.stderr[-3000:]}")
    stamp.write_bytes(requirements)
    return python
