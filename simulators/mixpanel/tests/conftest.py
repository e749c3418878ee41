"""The simulator tests' setup: the real simulator as a subprocess, one a test module, reset
before each test. Plain HTTP; no Django."""

import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[3]
if str(_REPO) not in sys.path:  # run from anywhere: the simulators package is at the root
    sys.path.insert(0, str(_REPO))

from simulators.mixpanel.testing import SimulatorProcess  # noqa: E402


@pytest.fixture(scope="module")
def sim():
    with SimulatorProcess() as process:
        yield process


@pytest.fixture(autouse=True)
def fresh(sim):
    """The seeded state before each test, and no fault switch left on after it."""
    sim.reset()
    yield
    sim.clear_faults()
