"""Mixpanel HTTP API simulator (pure standard library).

Run it with ``python -m simulators.mixpanel --host 127.0.0.1 --port 0`` or, from tests,
with :class:`simulators.mixpanel.testing.SimulatorProcess`.  See README.md.
"""

from .state import (
    DEFAULT_API_SECRET,
    DEFAULT_ORGANIZATION_ID,
    DEFAULT_PROJECT_ID,
    DEFAULT_PROJECT_TOKEN,
    DEFAULT_SA_SECRET,
    DEFAULT_SA_USERNAME,
    State,
)

__all__ = [
    "DEFAULT_API_SECRET",
    "DEFAULT_ORGANIZATION_ID",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PROJECT_TOKEN",
    "DEFAULT_SA_SECRET",
    "DEFAULT_SA_USERNAME",
    "SimulatorProcess",
    "SimulatorServer",
    "State",
    "make_server",
]


def __getattr__(name: str):
    # Lazy so `python -m simulators.mixpanel` doesn't import more than it needs.
    if name in ("SimulatorServer", "make_server"):
        from . import server

        return getattr(server, name)
    if name == "SimulatorProcess":
        from .testing import SimulatorProcess

        return SimulatorProcess
    raise AttributeError(name)
