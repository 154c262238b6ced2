"""FastAPI dependencies: who may call a route, the database session, the clock and the app's state."""

from __future__ import annotations

import time
from typing import Annotated, Awaitable, Callable, Iterator

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from evaluators.db import session_scope
from evaluators.fleet.auth import AGENT, ENROL, REQUESTER, SHARED, Principal
from evaluators.fleet.queue import changed
from evaluators.fleet.settings import FleetSettings
from evaluators.fleet.wakeup import Wakeup

_WHAT = {
    REQUESTER: "the search side (the fleet token)",
    AGENT: "enrolled agents (their own credential)",
    ENROL: "enrolment (the enrolment token)",
}

Clock = Callable[[], float]


def get_settings(request: Request) -> FleetSettings:
    """The settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_engine(request: Request) -> Engine:
    """The engine of the study database."""
    return request.app.state.engine  # type: ignore[no-any-return]


def get_wakeup(request: Request) -> Wakeup:
    """The app's long-poll wake-up."""
    return request.app.state.wakeup  # type: ignore[no-any-return]


def get_clock() -> Clock:
    """The coordinator's clock (epoch seconds); every lease decision uses it and only it."""
    return time.time


def get_principal(request: Request) -> Principal:
    """The caller, as :class:`evaluators.fleet.auth.AuthMiddleware` authenticated it."""
    return request.state.principal  # type: ignore[no-any-return]


def allow(*roles: str) -> Callable[[Principal], Awaitable[None]]:
    """A dependency refusing (403) callers whose role is not among ``roles``.

    The legacy shared token (role ``shared``) may do whatever the search side or an agent may.
    """

    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> None:
        shared_ok = principal.role == SHARED and (REQUESTER in roles or AGENT in roles)
        if principal.role not in roles and not shared_ok:
            allowed = ", ".join(_WHAT[role] for role in roles if role in _WHAT)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this credential may not call this route (it is for {allowed})",
            )

    return check


def check_agent(principal: Principal, agent_id: str) -> None:
    """Refuse (403) an agent acting for another agent's id (legacy shared token: any id).

    Raises:
        HTTPException: 403 when the ids differ.
    """
    if principal.role == AGENT and principal.agent_id != agent_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"agent {principal.agent_id} may not act for agent {agent_id}",
        )


def get_session(
    engine: Annotated[Engine, Depends(get_engine)], wakeup: Annotated[Wakeup, Depends(get_wakeup)]
) -> Iterator[Session]:
    """A session committed before the response is sent; wakes the long-polls if a job changed."""
    with session_scope(engine) as session:
        yield session
    if changed(session):
        wakeup.notify()


SettingsDep = Annotated[FleetSettings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
WakeupDep = Annotated[Wakeup, Depends(get_wakeup)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
