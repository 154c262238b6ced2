"""The coordinator's FastAPI application (``create_app``), stateless over the study database."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from evaluators.db import make_engine
from evaluators.fleet.dependencies import require_token
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
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        content={"detail": f"the fleet's database is unavailable: {first}"},
        headers={"Retry-After": "1"},
    )


def create_app(settings: FleetSettings, engine: Engine | None = None) -> FastAPI:
    """The coordinator app over ``settings.storage`` (or ``engine``), its tables created.

    Every route requires the fleet token, the OpenAPI schema (``/v1/openapi.json``) included;
    request bodies are capped at ``max_json_bytes``, artifact uploads at ``max_artifact_bytes``
    (413 beyond). The app keeps no state outside the database: restart it, or run several over
    one database, and nothing is lost.

    Raises:
        evaluators.errors.StorageError: When the database cannot be reached.
    """
    app = FastAPI(
        title="hwsearch fleet coordinator",
        dependencies=[Depends(require_token)],
        max_body_size=settings.max_json_bytes,
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.storage)
    app.state.wakeup = Wakeup()
    app.include_router(agents.router, prefix=API_PREFIX)
    app.include_router(jobs.router, prefix=API_PREFIX)
    app.include_router(artifacts.router, prefix=API_PREFIX, max_body_size=settings.max_artifact_bytes)
    app.include_router(stats.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        """The API schema (token required like every other route)."""
        return app.openapi()

    app.add_exception_handler(JobNotFound, _detail(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(AgentNotFound, _detail(status.HTTP_404_NOT_FOUND))
    app.add_exception_handler(LeaseConflict, _detail(status.HTTP_409_CONFLICT))
    app.add_exception_handler(OperationalError, _storage_unavailable)
    return app
