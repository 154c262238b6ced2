"""uvicorn's HTTP/1.1 protocol with a deadline for request headers (no slow-header attacks).

uvicorn closes a kept-alive connection that stays idle after a response (``timeout_keep_alive``)
but has no limit before a request's headers are complete: a client that connects and sends
nothing, or drips a header byte now and then, holds its connection forever. This protocol closes
any connection whose request headers are not complete within ``header_timeout`` seconds of the
connection opening, or of the first byte of a later request on the same connection.

Bodies are not covered: every request is authenticated from its headers before its body is read
(:mod:`evaluators.fleet.auth`), so only credential holders can send slow bodies; a reverse proxy's
body timeout (nginx ``client_body_timeout``) bounds those where that matters.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """``H11Protocol`` that closes connections whose request headers take too long.

    Invariant: a timer is armed exactly while the connection waits for (the rest of) a request's
    headers; it is cancelled as soon as h11 has parsed them.
    """

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Arm the deadline for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed h11; arm the deadline when a new request starts, cancel it once its headers parsed."""
        if self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """A :class:`HeaderDeadlineProtocol` subclass whose deadline is ``seconds``."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
