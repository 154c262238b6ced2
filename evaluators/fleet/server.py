"""Run the coordinator under uvicorn: in the foreground (CLI) or in a background thread (launcher)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from evaluators.errors import HwsearchError
from evaluators.fleet.app import create_app
from evaluators.fleet.connections import with_header_timeout
from evaluators.fleet.settings import FleetSettings

_GRACEFUL_SHUTDOWN_S = 3
_START_TIMEOUT_S = 30.0
MAX_HEADER_BYTES = 16 * 1024
"""Largest request head (request line + headers) a connection may send; beyond, 400 and close."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``.

    Raises:
        HwsearchError: For anything else.
    """
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise HwsearchError(
            f"cannot listen on {text!r}: expected HOST:PORT", "pass e.g. --listen 0.0.0.0:8765 or 127.0.0.1:0"
        )
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one).

    It listens at once, so clients that connect before uvicorn serves wait in the backlog
    instead of being refused. The socket is created with ``IPPROTO_TCP`` explicitly: asyncio
    disables Nagle's algorithm only on sockets whose protocol says TCP, and without that every
    response stalls ~40 ms on the peer's delayed ACK.

    Raises:
        HwsearchError: When the address is in use or not on this machine.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise HwsearchError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "pick a free port, or an address of this machine (0.0.0.0 for all)",
        ) from exc
    sock.set_inheritable(True)
    return sock


def socket_url(sock: socket.socket, *, connectable: bool = False, scheme: str = "http") -> str:
    """``http(s)://host:port`` of a bound socket.

    Args:
        connectable: Name the loopback address instead of a wildcard one (``0.0.0.0``, ``::``),
            so this machine can connect to the URL.
        scheme: ``https`` when the coordinator serves TLS.
    """
    host, port = sock.getsockname()[:2]
    if connectable:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def check_tls(settings: FleetSettings) -> None:
    """Load the TLS certificate and key once, so a bad pair is one clear error, not a traceback.

    Raises:
        HwsearchError: When they cannot be loaded or do not belong together.
    """
    if settings.tls_cert is None or settings.tls_key is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise HwsearchError(
            f"cannot serve TLS with {settings.tls_cert} and {settings.tls_key}: {exc}",
            "pass a PEM certificate (chain) with --tls-cert and its unencrypted PEM key with --tls-key",
        ) from exc


def _server(app: FastAPI, settings: FleetSettings, log_level: str) -> uvicorn.Server:
    """uvicorn for ``app``: TLS when configured, connection limits always (see :mod:`connections`)."""
    check_tls(settings)
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S, log_config=None,
        http=with_header_timeout(settings.header_timeout_seconds),
        timeout_keep_alive=int(max(1, round(settings.keep_alive_seconds))),
        limit_concurrency=settings.max_connections, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
    )
    return uvicorn.Server(config)


def serve(app: FastAPI, sockets: list[socket.socket], *, log_level: str = "info") -> None:
    """Serve ``app`` (from :func:`create_app`) on ``sockets`` until SIGINT/SIGTERM; blocks.

    Raises:
        HwsearchError: When the TLS certificate and key cannot be loaded.
    """
    _server(app, app.state.settings, log_level).run(sockets=sockets)


@dataclass
class EmbeddedCoordinator:
    """A coordinator running in a daemon thread of this process (what the launcher embeds).

    Attributes:
        url: Base URL for this machine (the remote backend), e.g. ``http://127.0.0.1:8765``
            (``https`` with TLS); loopback when listening on a wildcard address.
        listen_url: The address as bound, e.g. ``http://0.0.0.0:8765``; agents on other machines
            use this machine's LAN address with that port.
    """

    url: str
    listen_url: str
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread (open long-polls are cut after a few seconds)."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "EmbeddedCoordinator":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_embedded(
    settings: FleetSettings, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
) -> EmbeddedCoordinator:
    """Start a coordinator in a background thread and return once it accepts connections.

    Args:
        settings: Token, storage (the study's database) and limits.
        host: Address to listen on (``0.0.0.0`` so devices on the LAN reach it).
        port: Port (0: a free one; read it from the returned ``url``).
        log_level: uvicorn's log level.

    Raises:
        HwsearchError: When the address cannot be bound, or the server does not start.
        evaluators.errors.StorageError: When the database cannot be reached.
    """
    app = create_app(settings)
    server = _server(app, settings, log_level)
    sock = bind(host, port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="hwsearch-fleet", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise HwsearchError(
                f"the fleet coordinator did not start on {host}:{port}",
                "see the log above; check --fleet-listen and --storage",
            )
        time.sleep(0.01)
    listen_url = socket_url(sock, scheme=settings.scheme)
    logging.getLogger(__name__).info("fleet coordinator listening on %s", listen_url)
    return EmbeddedCoordinator(
        url=socket_url(sock, connectable=True, scheme=settings.scheme), listen_url=listen_url,
        _server=server, _thread=thread,
    )
