"""``--latency remote``: connect the search to a fleet coordinator, or embed one.

Over ``https://`` the coordinator's certificate is verified against ``--fleet-ca PATH`` (or env
``HWSEARCH_FLEET_CA``), else the system's CAs. An embedded coordinator (``--fleet-listen``) serves
TLS and enrols agents when ``HWSEARCH_FLEET_TLS_CERT``/``_TLS_KEY`` and
``HWSEARCH_FLEET_ENROL_TOKEN`` are set (its settings read the environment).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from evaluators.errors import HwsearchError
from evaluators.fleet.protocol import CA_ENV

ENV_TOKEN = "HWSEARCH_FLEET_TOKEN"


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise HwsearchError(f"--fleet-listen {value!r} is not HOST:PORT", "pass e.g. --fleet-listen 0.0.0.0:8765")
    return host, int(port)


def remote_backend(args: Any, storage_url: str, cleanups: list[Callable[[], None]]) -> Any:
    """The remote latency backend for ``args``; starts an embedded coordinator for ``--fleet-listen``.

    Functions that undo what was started are appended to ``cleanups`` (called in reverse order).

    Raises:
        HwsearchError: Missing token or device tag, both or neither of ``--fleet``/``--fleet-listen``.
    """
    from evaluators.latency import RemoteOptions, make_latency_backend

    token = args.fleet_token or os.environ.get(ENV_TOKEN)
    if not token:
        raise HwsearchError("--latency remote needs the fleet token", f"pass --fleet-token or set {ENV_TOKEN}")
    if not args.device:
        raise HwsearchError("--latency remote needs the target device tag", "pass --device TAG (e.g. --device rpi4b)")
    if bool(args.fleet) == bool(args.fleet_listen):
        raise HwsearchError("--latency remote needs exactly one of --fleet URL and --fleet-listen HOST:PORT",
                            "pass --fleet URL of a running coordinator, or --fleet-listen to embed one")
    url = args.fleet
    ca = getattr(args, "fleet_ca", None) or os.environ.get(CA_ENV) or None
    if args.fleet_listen:
        from pydantic import ValidationError

        from evaluators.fleet.server import start_embedded
        from evaluators.fleet.settings import FleetSettings

        host, port = _parse_listen(args.fleet_listen)
        try:
            settings = FleetSettings(token=token, storage=storage_url)
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise HwsearchError(f"bad fleet settings: {message}",
                                "pass a --fleet-token of 16+ characters and check the HWSEARCH_FLEET_* "
                                "variables (TLS needs _TLS_CERT, _TLS_KEY and _ENROL_TOKEN)") from exc
        coordinator = start_embedded(settings, host, port)
        cleanups.append(coordinator.stop)
        url = coordinator.url
        lan = host in ("0.0.0.0", "::")
        agent_url = f"{settings.scheme}://<this machine's LAN address>:{url.rsplit(':', 1)[1]}" if lan else url
        secret = "$HWSEARCH_FLEET_ENROL_TOKEN" if settings.enrolment else "$HWSEARCH_FLEET_TOKEN"
        trust = f" --ca {ca or '<CA file>'}" if settings.scheme == "https" else ""
        print(f"fleet coordinator listening on {coordinator.listen_url}; start agents with: "
              f"python -m evaluators.agent --fleet {agent_url}{trust} --token {secret} --device {args.device}")
    try:
        backend = make_latency_backend("remote", RemoteOptions(fleet_url=url, token=token, device_tag=args.device,
                                                               timeout_s=args.fleet_timeout, ca=ca))
    except ValueError as exc:
        raise HwsearchError(f"cannot use the fleet at {url}: {exc}",
                            "pass --fleet-ca with the PEM file of the CA that signed the coordinator's certificate, "
                            "and an https:// URL") from exc
    cleanups.append(backend.close)
    return backend
