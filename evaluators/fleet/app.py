"""The coordinator's FastAPI application (``create_app``), stateless over the study database."""

from __future__ import annotations

import math
from typing import Any, Awaitable, Callable

from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from evaluators.db import make_engine
from evaluators.fleet.auth import REQUESTER, AuthMiddleware, Authenticator, storage_unavailable_detail
from evaluators.fleet.dependencies import allow
from evaluators.fleet.protocol import API_PREFIX
from evaluators.fleet.queue import JobNotFound, LeaseConflict
from evaluators.fleet.registry import AgentNotFound
from evaluators.fleet.routers import agents, artifacts, jobs, stats
from evaluators.fleet.settings import FleetSettings
from evaluators.fleet.wakeup import Wakeup

Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _detail(code: int) -> Handler:
    """A handler answering ``code`` with the exception's message as ``detail``."""

    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=code, content={"detail": str(exc)})

    return handler


async def _storage_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": storage_unavailable_detail(exc)}, headers={"Retry-After": "1"},
    )


def _finite_only(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, without echoing the input.

    FastAPI's own handler echoes the offending value, and a NaN or infinity (which Python's JSON
    parser accepts) cannot be written back as JSON: it answered 500. Only ``type``, ``loc``
    and ``msg`` are sent, and a location part that is a non-finite number is written as text.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [{
        "type": str(error.get("type", "value_error")),
        "loc": [part if _finite_only(part) else str(part) for part in error.get("loc", ())],
        "msg": str(error.get("msg", "invalid value")).removeprefix("Value error, "),
    } for error in exc.errors()]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": errors})


def create_app(settings: FleetSettings, engine: Engine | None = None) -> FastAPI:
    """The coordinator app over ``settings.storage`` (or ``engine``), its tables created.

    Every route requires a credential, the OpenAPI schema (``/v1/openapi.json``) included, checked
    from the headers before any body is read (:mod:`evaluators.fleet.auth`), so an unauthenticated
    request gets 401 whatever it sends; request bodies are capped at ``max_json_bytes``, artifact
    uploads at ``max_artifact_bytes`` (413 beyond, for authenticated callers). The app
    keeps no state outside the database: restart it, or run several over one database, and
    nothing is lost.

    Raises:
        evaluators.errors.StorageError: When the database cannot be reached.
    """
    app = FastAPI(title="hwsearch fleet coordinator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.storage)
    app.state.wakeup = Wakeup()
    for router in (agents.router, jobs.router, stats.router):
        app.include_router(router, prefix=API_PREFIX, max_body_size=settings.max_json_bytes)
    app.include_router(artifacts.router, prefix=API_PREFIX, max_body_size=settings.max_artifact_bytes)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False, dependencies=[Depends(allow(REQUESTER))])
    def openapi() -> dict[str, Any]:
        """The API schema (the fleet token required like every other route)."""
        return app.openapi()

    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(JobNotFound, _detail(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(AgentNotFound, _detail(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(LeaseConflict, _detail(status.HTTP_409_CONFLICT))
    app.add_exception_handler(OperationalError, _storage_unavailable)
    app.add_middleware(AuthMiddleware, authenticator=Authenticator(settings, app.state.engine))
    return app
