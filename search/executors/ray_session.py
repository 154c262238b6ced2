"""Connecting the driver to Ray: a private local instance or an existing cluster.

No ``--ray-address`` (and no ``RAY_ADDRESS``) starts a private Ray instance on this machine, bound
to 127.0.0.1, with its files under ``/tmp/hwsearch-ray-<uid>``, no dashboard, no worker logs on
the console, and token auth with a token made for this process (kept in its environment, never
written to ``~/.ray``; it must be set before Ray is first imported, because Ray's token loader
caches what it finds). ``auto``, a ``host:port`` GCS address or ``ray://host:10001`` joins an
existing cluster; the cluster's token comes from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
``~/.ray/auth_token`` as Ray reads them, and when one of them is there token auth is switched on
for the client (Ray 2.60 does that by itself only for ``auto``) unless ``RAY_AUTH_MODE`` says
otherwise. An address where nothing listens fails in seconds (Ray itself waits minutes).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators.errors import HwsearchError

ENV_ADDRESS = "RAY_ADDRESS"
PROBE_TIMEOUT_S = 5.0
CAPACITY_REFRESH_S = 30.0
CLIENT_ATTEMPTS = 3


class RayConnectError(HwsearchError):
    """The Ray cluster cannot be reached or refused this driver."""


def default_temp_dir() -> Path:
    """``/tmp/hwsearch-ray-<uid>``: short enough for Ray's socket paths, private to the user."""
    return Path(f"/tmp/hwsearch-ray-{os.getuid()}")


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and what each trial reserves.

    Attributes:
        address: ``None`` (private local instance), ``auto``, ``host:port`` or ``ray://host:port``.
        trial_cpus: CPUs each trial reserves (also its torch threads).
        trial_gpus: GPUs each trial reserves (fractions allowed); > 0 trains on CUDA.
        temp_dir: Ray's session files for a private instance.
    """

    address: str | None = None
    trial_cpus: float = 1.0
    trial_gpus: float = 0.0
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.trial_cpus <= 0 or self.trial_gpus < 0:
            raise HwsearchError(f"--trial-cpus {self.trial_cpus:g} / --trial-gpus {self.trial_gpus:g} are invalid",
                                "pass --trial-cpus > 0 and --trial-gpus >= 0")


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayConnectError(f"--ray-address {address!r} is not auto, HOST:PORT or ray://HOST:PORT",
                              "pass e.g. --ray-address ray://head-node:10001")
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, in one line, when nothing listens at ``address`` (Ray itself waits minutes).

    Raises:
        RayConnectError: Malformed address or no TCP answer within ``timeout_s``.
    """
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayConnectError(f"cannot reach the Ray cluster at {address}: {reason}",
                              "start it (ray start --head) or fix --ray-address; "
                              "omit it to run Ray on this machine") from exc


class RaySession:
    """A connection to Ray for one search; :meth:`close` shuts down what it started.

    Use :meth:`connect` to build one.
    """

    def __init__(self, options: RayOptions, started_local: bool) -> None:
        self.options = options
        self.started_local = started_local
        self._capacity = 0
        self._capacity_at = -math.inf

    @classmethod
    def connect(cls, options: RayOptions) -> RaySession:
        """Start a private Ray instance or join the cluster at ``options.address``.

        Raises:
            RayConnectError: Unreachable or refusing cluster, bad token, no resources for a trial.
        """
        address = options.address or os.environ.get(ENV_ADDRESS) or None
        if address is None:
            _private_token_env()
        else:
            _client_token_env()
        import ray

        try:
            if address is None:
                temp = options.temp_dir or default_temp_dir()
                temp.mkdir(parents=True, exist_ok=True)
                ray.init(_temp_dir=str(temp), include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1", logging_level="WARNING", configure_logging=True)
            else:
                if address != "auto":
                    probe_address(address)
                _join(address)
        except RayConnectError:
            raise
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, AuthenticationError, RuntimeError...
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            where = address or "a private local instance"
            raise RayConnectError(f"cannot connect to Ray ({where}): {type(exc).__name__}: {first[:300]}",
                                  "check --ray-address, that the cluster runs the same Ray and Python versions, "
                                  "and its token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)") from exc
        session = cls(options, address is None)
        try:
            if session.capacity() < 1:
                raise RayConnectError(
                    f"no node of the Ray cluster can run a trial with --trial-cpus {options.trial_cpus:g} "
                    f"--trial-gpus {options.trial_gpus:g} (cluster: {_describe(ray.cluster_resources())})",
                    "lower --trial-cpus/--trial-gpus or add nodes with those resources")
        except BaseException:
            session.close()
            raise
        return session

    def capacity(self) -> int:
        """Trials the cluster can run at once (refreshed every 30 s, so new nodes are used)."""
        import ray

        now = time.monotonic()
        if now - self._capacity_at >= CAPACITY_REFRESH_S:
            self._capacity = trial_slots(ray.cluster_resources(), self.options.trial_cpus, self.options.trial_gpus)
            self._capacity_at = now
        return self._capacity

    def resources(self) -> str:
        """The cluster's CPUs and GPUs, for the console."""
        import ray

        return _describe(ray.cluster_resources())

    def close(self) -> None:
        """Disconnect (and stop a private instance); idempotent."""
        import ray

        if ray.is_initialized():
            ray.shutdown()


def _join(address: str) -> None:
    """``ray.init`` on an existing cluster; a Ray Client whose server side fails to start is retried.

    The Ray Client proxy forks one server per client; on a busy head that start sometimes fails
    (``ConnectionAbortedError: Initialization failure from server``) and the next attempt works.
    """
    import ray

    kwargs: dict[str, Any] = {"logging_level": "WARNING"}
    if "://" not in address:
        kwargs["log_to_driver"] = False
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(address=address, **kwargs)
            return
        except ConnectionAbortedError:
            if "://" not in address or attempt == CLIENT_ATTEMPTS:
                raise
            if ray.is_initialized():
                ray.shutdown()
            time.sleep(attempt)


def trial_slots(resources: Mapping[str, float], trial_cpus: float, trial_gpus: float) -> int:
    """How many trials reserving ``trial_cpus``/``trial_gpus`` fit in ``resources`` at once."""
    slots = math.floor(resources.get("CPU", 0.0) / trial_cpus + 1e-9)
    if trial_gpus > 0:
        slots = min(slots, math.floor(resources.get("GPU", 0.0) / trial_gpus + 1e-9))
    return max(0, slots)


def _describe(resources: Mapping[str, float]) -> str:
    return f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU"


def _client_token_env() -> None:
    """Token auth for a client when a token is at hand and the user did not choose a mode."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def _private_token_env() -> None:
    """Token auth for a private instance with a token of this process, unless the user chose one."""
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
