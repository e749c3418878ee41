"""Run the Mixpanel simulator as a subprocess (tests, benchmarks, the demo's configuration).
Standard library only; the process handling is ``simulators/process.py``'s.

with SimulatorProcess() as sim:
    sim.configure(events_per_day=100, profiles={"count": 5000})
    status, headers, body = sim.request("GET", "/api/query/engage?project_id=2002",
                                        auth=sim.sa_auth())
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from simulators import process

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
REPO_ROOT = process.REPO_ROOT

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


class SimulatorProcess(process.SimulatorProcess):
    """The Mixpanel simulator as a subprocess, with helpers for its credentials and its control
    endpoints (``/__sim__/...``).

    ``extra_args`` are CLI flags (``"--rate-limits"``, ``"--profiles", "1000"`` ...).  By default
    (``standalone=True``) the simulator directory is run directly (``python simulators/mixpanel``),
    which imports no parent package; ``standalone=False`` runs ``python -m simulators.mixpanel``.
    """

    def __init__(self, *extra_args: str, standalone: bool = True, **options: Any) -> None:
        super().__init__(*extra_args, **options)
        self.standalone = standalone

    def command(self) -> list[str]:
        target = [str(SIMULATOR_DIR)] if self.standalone else ["-m", "simulators.mixpanel"]
        return [
            self.python,
            *target,
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.extra_args,
        ]

    # ----------------------------------------------------------------------------------------
    # Mixpanel's credentials and the simulator's control endpoints
    # ----------------------------------------------------------------------------------------
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

    # Data management (simulators/mixpanel/data_management.py): cohorts, annotations, lookup
    # tables and identity, as event-polling and element tests change them.
    def cohorts(self) -> list[dict]:
        return self._control("GET", "cohorts")

    def add_cohort(self, **cohort: Any) -> dict:
        return self._control("POST", "cohorts", cohort)

    def change_cohort(self, cohort_id: int, **changes: Any) -> dict:
        return self._control("PATCH", f"cohorts/{cohort_id}", changes)

    def delete_cohort(self, cohort_id: int) -> Any:
        return self._control("DELETE", f"cohorts/{cohort_id}")

    def annotations(self) -> list[dict]:
        return self._control("GET", "annotations")

    def add_annotation(self, **annotation: Any) -> dict:
        return self._control("POST", "annotations", annotation)

    def change_annotation(self, annotation_id: int, **changes: Any) -> dict:
        return self._control("PATCH", f"annotations/{annotation_id}", changes)

    def delete_annotation(self, annotation_id: int) -> Any:
        return self._control("DELETE", f"annotations/{annotation_id}")

    def lookup_tables(self) -> list[dict]:
        return self._control("GET", "lookup-tables")

    def identity(self, id_management: str | None = None) -> dict:
        """The identity clusters and aliases; with ``id_management`` ("simplified",
        "original", "legacy"), switch the project's ID-management version first."""
        if id_management is None:
            return self._control("GET", "identity")
        return self._control("POST", "identity", {"id_management": id_management})
