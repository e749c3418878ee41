"""CLI: ``python -m simulators.mixpanel --host 127.0.0.1 --port 0``.

Prints exactly one line ``LISTENING http://<host>:<port>`` on stdout once the socket is bound,
then serves until SIGTERM/SIGINT.

``python simulators/mixpanel [args]`` (the directory itself) runs the same CLI without
importing the parent package ``simulators`` -- useful where the repository is not on the path;
the simulator itself only needs the standard library.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

STANDALONE_PACKAGE = "mixpanel_simulator"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators.mixpanel",
        description="Mixpanel HTTP API simulator (standard library only).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--rate-limits", action="store_true", help="enforce Mixpanel rate limits")
    p.add_argument("--events-per-day", type=int, help="generated export events per UTC day")
    p.add_argument("--profiles", type=int, help="number of generated engage profiles")
    p.add_argument("--import-max-bytes", type=int, help="/import uncompressed byte limit")
    p.add_argument("--organization-id", type=int)
    p.add_argument("--project-id", type=int)
    p.add_argument("--project-token")
    p.add_argument("--api-secret")
    p.add_argument("--sa-username", help="username of the seeded owner service account")
    p.add_argument("--sa-secret", help="secret of the seeded owner service account")
    p.add_argument(
        "--config",
        help="extra config as JSON (same keys as POST /__sim__/config), or @path/to/file.json",
    )
    return p


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if args.config:
        text = args.config
        if text.startswith("@"):
            with open(text[1:], encoding="utf-8") as fh:
                text = fh.read()
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise SystemExit("--config must be a JSON object")
        cfg.update(loaded)
    simple = {
        "events_per_day": args.events_per_day,
        "import_max_bytes": args.import_max_bytes,
        "organization_id": args.organization_id,
        "project_id": args.project_id,
        "project_token": args.project_token,
        "api_secret": args.api_secret,
        "service_account_username": args.sa_username,
        "service_account_secret": args.sa_secret,
    }
    cfg.update({k: v for k, v in simple.items() if v is not None})
    if args.profiles is not None:
        cfg["profiles"] = {"count": args.profiles}
    if args.rate_limits:
        rl = cfg.get("rate_limits")
        rl = dict(rl) if isinstance(rl, dict) else {}
        rl["enabled"] = True
        cfg["rate_limits"] = rl
    return cfg


def main(argv: list[str] | None = None) -> int:
    from .server import SimulatorServer
    from .state import State

    args = build_parser().parse_args(argv)
    try:
        state = State(**overrides_from_args(args))
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    server = SimulatorServer((args.host, args.port), state=state, verbose=args.verbose)

    def stop(signum: int, frame: Any) -> None:
        server.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(f"LISTENING {server.base_url}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


def standalone_main() -> int:
    """Load this directory as the top-level package ``mixpanel_simulator`` and run the CLI."""
    here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == here:
        sys.path.pop(0)  # don't expose server.py, state.py ... as top-level modules
    spec = importlib.util.spec_from_file_location(
        STANDALONE_PACKAGE, here / "__init__.py", submodule_search_locations=[str(here)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[STANDALONE_PACKAGE] = package
    spec.loader.exec_module(package)
    cli = importlib.import_module(f"{STANDALONE_PACKAGE}.__main__")
    return cli.main()


if __name__ == "__main__":
    sys.exit(main() if __package__ else standalone_main())
