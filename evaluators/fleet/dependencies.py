"""FastAPI dependencies: the token check, the database session, the clock and the app's state."""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Callable, Iterator

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from evaluators.db import session_scope
from evaluators.fleet.queue import changed
from evaluators.fleet.settings import FleetSettings
from evaluators.fleet.wakeup import Wakeup

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


async def require_token(request: Request, settings: Annotated[FleetSettings, Depends(get_settings)]) -> None:
    """Refuse the request (401) unless it carries ``Authorization: Bearer <fleet token>``.

    The comparison is constant-time (``hmac.compare_digest``) so response timing leaks nothing
    about the token.
    """
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong fleet token (send Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
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
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
