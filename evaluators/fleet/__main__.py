"""``python -m evaluators.fleet``: the standalone fleet coordinator and its agent administration.

Usage::

    python -m evaluators.fleet serve --storage sqlite:///runs/hwsearch.db --listen 0.0.0.0:8765 \\
        --token "$HWSEARCH_FLEET_TOKEN" [--enrol-token "$HWSEARCH_FLEET_ENROL_TOKEN"] \\
        [--tls-cert cert.pem --tls-key key.pem] [--lease-seconds 30] [--max-attempts 3] [--max-artifact-mb 256]
    python -m evaluators.fleet agents list [--storage URL]
    python -m evaluators.fleet agents revoke AGENT_ID [--storage URL]

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
from evaluators.fleet.protocol import TOKEN_ENV
from evaluators.fleet.settings import DEFAULT_STORAGE
from evaluators.secret_args import glue_secret_values

STORAGE_ENV = "HWSEARCH_FLEET_STORAGE"
ENROL_TOKEN_ENV = "HWSEARCH_FLEET_ENROL_TOKEN"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluators.fleet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    storage_help = f"study database URL (default: env {STORAGE_ENV} or {DEFAULT_STORAGE})"
    serve = commands.add_parser("serve", help="run the coordinator until SIGINT/SIGTERM")
    serve.add_argument("--storage", help=storage_help)
    serve.add_argument("--listen", action="append", metavar="HOST:PORT",
                       help="address to serve on; repeat for several (default 127.0.0.1:8765)")
    serve.add_argument("--token", help=f"fleet token of the search side (default: env {TOKEN_ENV})")
    serve.add_argument("--enrol-token", help=f"token devices enrol with; agents then hold their own revocable "
                       f"credentials and the fleet token no longer works for them (default: env {ENROL_TOKEN_ENV})")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (chain); needs --tls-key "
                       "and an enrolment token")
    serve.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    serve.add_argument("--lease-seconds", type=float, help="lease of a claimed job without heartbeat")
    serve.add_argument("--max-attempts", type=int, help="leases a job may lose before it fails")
    serve.add_argument("--max-artifact-mb", type=float, help="largest artifact accepted (MiB)")
    serve.add_argument("--max-wait-seconds", type=float, help="longest long-poll")
    serve.add_argument("--header-timeout", type=float, help="close connections whose request headers take longer "
                       "(seconds, default 10)")
    serve.add_argument("--max-connections", type=int, help="connections served at once, beyond: 503 (default 256)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    agents = commands.add_parser("agents", help="list agents or revoke one (works on the database directly)")
    agent_commands = agents.add_subparsers(dest="action", required=True)
    listing = agent_commands.add_parser("list", help="every registered agent, its device and credential state")
    listing.add_argument("--storage", help=storage_help)
    revoke = agent_commands.add_parser("revoke", help="lock an enrolled agent out from its next request on; "
                                       "its leased jobs go back to the queue")
    revoke.add_argument("agent_id", metavar="AGENT_ID")
    revoke.add_argument("--storage", help=storage_help)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from evaluators.fleet.settings import MIB, FleetSettings

    given: dict[str, Any] = {
        "token": args.token, "enrol_token": args.enrol_token, "storage": args.storage,
        "tls_cert": args.tls_cert, "tls_key": args.tls_key, "lease_seconds": args.lease_seconds,
        "max_attempts": args.max_attempts, "max_wait_seconds": args.max_wait_seconds,
        "header_timeout_seconds": args.header_timeout, "max_connections": args.max_connections,
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


def _serve(args: argparse.Namespace) -> None:
    from evaluators.fleet.app import create_app
    from evaluators.fleet.server import bind, parse_listen, serve, socket_url

    settings = _settings(args)
    app = create_app(settings)
    sockets = [bind(*parse_listen(text)) for text in args.listen or ["127.0.0.1:8765"]]
    urls = ", ".join(socket_url(sock, scheme=settings.scheme) for sock in sockets)
    mode = "agents enrol" if settings.enrolment else "legacy shared-token mode"
    print(f"hwsearch fleet coordinator listening on {urls} (storage {settings.storage}; {mode})", flush=True)
    serve(app, sockets, log_level=args.log_level)


def _agents(args: argparse.Namespace) -> None:
    from evaluators.fleet.admin import list_agents, revoke_agent

    storage = args.storage or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if args.action == "list":
        print(list_agents(storage))
    else:
        print(revoke_agent(storage, args.agent_id))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(glue_secret_values(argv, {"--token", "--enrol-token"}))
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "serve":
            _serve(args)
        else:
            _agents(args)
    except HwsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
