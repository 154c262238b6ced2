"""Who is calling: a pure ASGI middleware that authenticates every request before its body is read.

Credentials (``Authorization: Bearer ...``) and what they are worth:

* the **fleet token** (``--token``): the search side (uploads, jobs, listings). Without an
  enrolment token the coordinator runs in *legacy shared-token mode* and this token also works on
  every agent route, as before enrolment existed;
* the **enrolment token** (``--enrol-token``): only ``POST /v1/enrol``, which answers with the
  agent's own credential. Configuring it ends legacy mode: the fleet token no longer works on
  agent routes, and agents must enrol;
* an **agent credential** (``agent.<id>.<secret>``): that one agent's routes, only for itself;
  checked against the stored hash on every request, so a revocation counts on the next one.

A missing or wrong credential is answered 401 at once, with ``Connection: close``, without reading
the request body (a client cannot make the coordinator buffer or parse anything first). What a
known caller may do is decided by each route's dependency (:func:`evaluators.fleet.dependencies.allow`).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, MutableMapping

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from evaluators.db import session_scope
from evaluators.fleet import enrolment
from evaluators.fleet.protocol import AGENT_CREDENTIAL_PREFIX
from evaluators.fleet.settings import FleetSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUESTER = "requester"
"""The search side, holding the fleet token."""
AGENT = "agent"
"""An enrolled agent, holding its own credential."""
ENROL = "enrol"
"""A device holding the enrolment token: it may only enrol."""
SHARED = "shared"
"""The fleet token in legacy shared-token mode: requester and any agent at once."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its role and, for an agent, its id."""

    role: str
    agent_id: str | None = None


class Denied(Exception):
    """The request carries no credential the coordinator accepts; the message says why."""


def storage_unavailable_detail(exc: BaseException) -> str:
    """The one-line answer when the database cannot be reached."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"the fleet's database is unavailable: {first}"


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Authenticator:
    """Maps an ``Authorization`` header to a :class:`Principal` (see the module docstring).

    Every configured token is compared, constant-time, whichever matches, so timing reveals
    neither the tokens nor which kind a guess resembled.
    """

    def __init__(self, settings: FleetSettings, engine: Engine) -> None:
        self._token = settings.token.get_secret_value()
        self._enrol = settings.enrol_token.get_secret_value() if settings.enrol_token else None
        self._engine = engine

    def _verify_agent(self, presented: str) -> Principal:
        with session_scope(self._engine) as session:
            verdict = enrolment.verify(session, presented)
        if verdict.refusal is not None:
            raise Denied(verdict.refusal)
        return Principal(AGENT, verdict.agent_id)

    async def authenticate(self, header: str) -> Principal:
        """The caller behind ``header``.

        Raises:
            Denied: Missing, malformed, wrong or revoked credential.
            sqlalchemy.exc.OperationalError: The database is unreachable (agent credentials only).
        """
        scheme, _, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            raise Denied("missing fleet token (send Authorization: Bearer <token>)")
        is_token = _equal(given, self._token)
        is_enrol = _equal(given, self._enrol or self._token) and self._enrol is not None
        if is_token:
            return Principal(SHARED if self._enrol is None else REQUESTER)
        if is_enrol:
            return Principal(ENROL)
        if given.startswith(AGENT_CREDENTIAL_PREFIX):
            return await run_in_threadpool(self._verify_agent, given)
        raise Denied("wrong fleet token or agent credential")


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *headers,
    ]})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Authenticate each HTTP request from its headers alone, before the app reads anything.

    On success the :class:`Principal` is stored in the request's state (``request.state.principal``).
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        try:
            principal = await self.authenticator.authenticate(header)
        except Denied as exc:
            await _answer(send, 401, str(exc), [(b"www-authenticate", b"Bearer")])
            return
        except OperationalError as exc:
            await _answer(send, 503, storage_unavailable_detail(exc), [(b"retry-after", b"1")])
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
