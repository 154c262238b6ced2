"""``python -m evaluators.agent``: the fleet agent daemon.

Usage::

    python -m evaluators.agent --fleet https://COORDINATOR:8765 --ca ca.pem --token ENROLMENT_TOKEN \\
        --device rpi4b [--threads N] [--cores 0-3] [--name NAME] [--tags fan,bookworm]

The token may come from ``HWSEARCH_FLEET_TOKEN`` instead of ``--token`` (keeps it out of ``ps``).
On a coordinator with enrolment the token is used once, to enrol: the agent then keeps its own
credential in ``--credential`` (mode 0600) and needs no token on later starts. On a legacy
coordinator (no enrolment token) the token is the shared fleet token, sent on every request.
SIGTERM (or Ctrl-C) finishes the current job, or releases it after ``--drain-seconds``; a second
one releases it at once. Exit status: 0 after a requested stop, 2 for a configuration error, a
token or credential the coordinator refuses (revoked agents included), or an unusable credential
file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from evaluators.agent.daemon import Agent, AgentOptions
from evaluators.agent.device import detect
from evaluators.fleet.client import FleetClient
from evaluators.fleet.protocol import CA_ENV, TOKEN_ENV, is_device_tag
from evaluators.secret_args import glue_secret_values

MIB = 1024 * 1024


class UsageError(Exception):
    """A flag the agent cannot run with."""


def parse_cores(text: str) -> tuple[int, ...]:
    """``0-3`` / ``1,3`` / ``0-1,3`` as a sorted tuple of core numbers.

    Raises:
        UsageError: For anything else.
    """
    cores: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            cores.update(range(int(low), int(high or low) + 1))
    except ValueError as exc:
        raise UsageError(f"--cores {text!r} is not a core list like 0-3 or 1,3") from exc
    if not cores or min(cores) < 0:
        raise UsageError(f"--cores {text!r} is not a core list like 0-3 or 1,3")
    return tuple(sorted(cores))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluators.agent", description="hwsearch fleet agent")
    parser.add_argument("--fleet", required=True, metavar="URL", help="coordinator URL, e.g. https://10.0.0.2:8765")
    parser.add_argument("--ca", metavar="PEM", help=f"CA certificate(s) that signed an https:// coordinator's "
                        f"certificate (default: env {CA_ENV}, else the system's CAs)")
    parser.add_argument("--token", help=f"enrolment token, or the shared fleet token of a legacy coordinator; not "
                        f"needed once enrolled (default: env {TOKEN_ENV})")
    parser.add_argument("--device", required=True, metavar="TAG", help="device tag whose jobs to claim, e.g. rpi4b")
    parser.add_argument("--name", help="agent name (default: host name)")
    parser.add_argument("--tags", default="", help="comma-separated labels shown with the agent")
    parser.add_argument("--threads", type=int, help="run every job with N intra-op threads (default: the job's)")
    parser.add_argument("--cores", help="pin jobs that name no cores to these CPUs, e.g. 0-3 or 1,2,3")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="longest wait for a job per request")
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "hwsearch-agent",
                        help="where downloaded artifacts are kept")
    parser.add_argument("--credential", type=Path, metavar="PATH",
                        help="where the agent keeps its own credential after enrolling (default: "
                             "WORK_DIR/credential.json; keep it on persistent storage)")
    parser.add_argument("--max-artifact-mb", type=float, default=256.0, help="largest artifact to download")
    parser.add_argument("--job-time-limit", type=float, default=900.0, help="seconds before a benchmark is killed")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds to connect to the coordinator and for each request")
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="after SIGTERM, how long the current job may finish before it is released")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _options(args: argparse.Namespace) -> AgentOptions:
    if not is_device_tag(args.device):
        raise UsageError(f"--device {args.device!r} is not a device tag (letters, digits, '.', '_', '-')")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    return AgentOptions(
        threads=args.threads, cores=parse_cores(args.cores) if args.cores else None,
        poll_s=max(0.0, args.poll_seconds), work_dir=args.work_dir, credential_path=args.credential,
        max_artifact_bytes=int(args.max_artifact_mb * MIB), job_time_limit_s=args.job_time_limit,
        drain_s=args.drain_seconds,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(glue_secret_values(argv, {"--token"}))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s agent: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = args.token or os.environ.get(TOKEN_ENV, "")
    try:
        options = _options(args)
        if not token and not options.credential_file.exists():
            raise UsageError(f"no fleet token: pass --token TOKEN or set {TOKEN_ENV}")
        ca = args.ca or os.environ.get(CA_ENV) or None
        client = FleetClient(args.fleet, token or None, timeout=args.request_timeout, ca=ca)
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    agent = Agent(client, detect(args.device, name=args.name, tags=tags), options)

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        agent.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return agent.run()
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
