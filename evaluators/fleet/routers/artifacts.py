"""Artifact endpoints: upload (sha256-verified, size-capped), existence check, download.

Artifacts are keyed by their sha256, validated as 64 hex digits before anything is looked up, and
stored in the database: no request path ever reaches a file system.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from evaluators.db import session_scope
from evaluators.fleet import store
from evaluators.fleet.dependencies import ClockDep, EngineDep, SessionDep, SettingsDep
from evaluators.fleet.protocol import not_onnx_reason
from evaluators.fleet.routers.paths import Sha256Path
from evaluators.fleet.schemas import ArtifactStored


router = APIRouter(prefix="/artifacts", tags=["artifacts"])

OCTET_STREAM = "application/octet-stream"


def _too_large(size: int, cap: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"artifact of {size} bytes is over the coordinator's cap of {cap} bytes "
               "(raise it with --max-artifact-mb)",
    )


def _store(engine: Engine, sha256: str, data: bytes, now: float) -> bool:
    try:
        with session_scope(engine) as session:
            return store.put(session, sha256, data, now=now)
    except IntegrityError:
        return False


@router.put("/{sha256}")
async def upload_artifact(
    sha256: Sha256Path, request: Request, response: Response, engine: EngineDep, settings: SettingsDep,
    clock: ClockDep,
) -> ArtifactStored:
    """Store the request body (raw bytes) under ``sha256`` after checking its digest.

    201 when stored, 200 when it was there already, 413 over the size cap, 422 when the digest
    differs from the path or the bytes are certainly not ONNX (a pickle, a zip checkpoint).
    """
    digest = hashlib.sha256()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_artifact_bytes:
            raise _too_large(len(body), settings.max_artifact_bytes)
        digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "type": "value_error", "loc": ["body"],
            "msg": f"the body's sha256 is {digest.hexdigest()}, not {sha256} as the path says",
        }])
    reason = not_onnx_reason(bytes(body[:8]))
    if reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
            "type": "value_error", "loc": ["body"], "msg": f"not an ONNX model: {reason}",
        }])
    created = await run_in_threadpool(_store, engine, sha256, bytes(body), clock())
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ArtifactStored(sha256=sha256, size_bytes=len(body), created=created)


@router.head("/{sha256}")
def artifact_exists(sha256: Sha256Path, session: SessionDep) -> Response:
    """200 with the size in ``Content-Length`` when stored, else 404."""
    size = store.size_of(session, sha256)
    if size is None:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    return Response(headers={"content-length": str(size)}, media_type=OCTET_STREAM)


@router.get("/{sha256}", response_class=Response, responses={200: {"content": {OCTET_STREAM: {}}}})
def download_artifact(sha256: Sha256Path, session: SessionDep, settings: SettingsDep) -> Response:
    """The artifact's bytes (404 unknown, 413 over the cap)."""
    size = store.size_of(session, sha256)
    if size is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no artifact {sha256}")
    if size > settings.max_artifact_bytes:
        raise _too_large(size, settings.max_artifact_bytes)
    return Response(content=store.read(session, sha256), media_type=OCTET_STREAM)
