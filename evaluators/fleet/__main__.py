"""``python -m evaluators.fleet serve``: the standalone fleet coordinator.

Usage::

    python -m evaluators.fleet serve --storage sqlite:///runs/hwsearch.db --listen 0.0.0.0:8765 \\
        --token "$HWSEARCH_FLEET_TOKEN" [--lease-seconds 30] [--max-attempts 3] [--max-artifact-mb 256]

Errors print one line (``error: <problem> -- fix: <fix>``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from pydantic import ValidationError

from evaluators.errors import HwsearchError
from evaluators.secret_args import glue_secret_values
from evaluators.fleet.protocol import TOKEN_ENV


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluators.fleet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the coordinator until SIGINT/SIGTERM")
    serve.add_argument("--storage", help="study database URL (default: env HWSEARCH_FLEET_STORAGE "
                       "or sqlite:///runs/hwsearch.db)")
    serve.add_argument("--listen", action="append", metavar="HOST:PORT",
                       help="address to serve on; repeat for several (default 127.0.0.1:8765)")
    serve.add_argument("--token", help=f"fleet token (default: env {TOKEN_ENV})")
    serve.add_argument("--lease-seconds", type=float, help="lease of a claimed job without heartbeat")
    serve.add_argument("--max-attempts", type=int, help="leases a job may lose before it fails")
    serve.add_argument("--max-artifact-mb", type=float, help="largest artifact accepted (MiB)")
    serve.add_argument("--max-wait-seconds", type=float, help="longest long-poll")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from evaluators.fleet.settings import MIB, FleetSettings

    given: dict[str, Any] = {
        "token": args.token, "storage": args.storage, "lease_seconds": args.lease_seconds,
        "max_attempts": args.max_attempts, "max_wait_seconds": args.max_wait_seconds,
        "max_artifact_bytes": None if args.max_artifact_mb is None else int(args.max_artifact_mb * MIB),
    }
    if given["token"] is None and not os.environ.get(TOKEN_ENV):
        raise HwsearchError("no fleet token given", f"pass --token TOKEN or set {TOKEN_ENV}")
    try:
        return FleetSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise HwsearchError(f"invalid fleet setting {field}: {message}", "see --help") from exc


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(glue_secret_values(argv, {"--token"}))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from evaluators.fleet.app import create_app
        from evaluators.fleet.server import bind, parse_listen, serve, socket_url

        settings = _settings(args)
        app = create_app(settings)
        sockets = [bind(*parse_listen(text)) for text in args.listen or ["127.0.0.1:8765"]]
        urls = ", ".join(socket_url(sock) for sock in sockets)
        print(f"hwsearch fleet coordinator listening on {urls} (storage {settings.storage})", flush=True)
        serve(app, sockets, log_level=args.log_level)
    except HwsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
