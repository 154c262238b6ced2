"""Artifact endpoints: upload (sha256-verified, size-capped), existence check, download.

Artifacts are keyed by their sha256, validated as 64 hex digits before anything is looked up, and
stored in the database: no request path ever reaches a file system. Memory stays bounded whatever
the size: an upload is spooled to an anonymous temporary file while it is hashed (no database
transaction is open while a slow client sends), then copied into the store chunk by chunk; a
download streams the stored chunks.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import BinaryIO

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from evaluators.db import session_scope
from evaluators.fleet import store
from evaluators.fleet.auth import AGENT, REQUESTER
from evaluators.fleet.dependencies import ClockDep, EngineDep, SessionDep, SettingsDep, allow
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


def _refused(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
        "type": "value_error", "loc": ["body"], "msg": message,
    }])


def _store(engine: Engine, sha256: str, spool: BinaryIO, size: int, now: float) -> bool:
    spool.seek(0)
    try:
        with session_scope(engine) as session:
            return store.put(session, sha256, spool, size, now=now)
    except IntegrityError:
        return False


async def _spool(request: Request, cap: int, spool: BinaryIO) -> tuple[str, int, bytes]:
    """Write the body to ``spool``; its sha256, size and first 8 bytes (413 past ``cap``)."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _too_large(size, cap)
        if len(head) < 8:
            head = (head + chunk)[:8]
        digest.update(chunk)
        spool.write(chunk)
    return digest.hexdigest(), size, head


@router.put("/{sha256}", dependencies=[Depends(allow(REQUESTER))])
async def upload_artifact(
    sha256: Sha256Path, request: Request, response: Response, engine: EngineDep, settings: SettingsDep,
    clock: ClockDep,
) -> ArtifactStored:
    """Store the request body (raw bytes) under ``sha256`` after checking its digest.

    201 when stored, 200 when it was there already, 413 over the size cap, 422 when the digest
    differs from the path or the bytes are certainly not ONNX (a pickle, a zip checkpoint).
    """
    with tempfile.TemporaryFile(prefix="hwsearch-upload-") as spool:
        digest, size, head = await _spool(request, settings.max_artifact_bytes, spool)
        if digest != sha256:
            raise _refused(f"the body's sha256 is {digest}, not {sha256} as the path says")
        reason = not_onnx_reason(head)
        if reason:
            raise _refused(f"not an ONNX model: {reason}")
        created = await run_in_threadpool(_store, engine, sha256, spool, size, clock())
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ArtifactStored(sha256=sha256, size_bytes=size, created=created)


@router.head("/{sha256}", dependencies=[Depends(allow(REQUESTER))])
def artifact_exists(sha256: Sha256Path, session: SessionDep) -> Response:
    """200 with the size in ``Content-Length`` when stored, else 404."""
    size = store.size_of(session, sha256)
    if size is None:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    return Response(headers={"content-length": str(size)}, media_type=OCTET_STREAM)


@router.get(
    "/{sha256}", response_class=Response, responses={200: {"content": {OCTET_STREAM: {}}}},
    dependencies=[Depends(allow(REQUESTER, AGENT))],
)
def download_artifact(sha256: Sha256Path, engine: EngineDep, session: SessionDep, settings: SettingsDep) -> Response:
    """The artifact's bytes, streamed (404 unknown, 413 over the cap)."""
    size = store.size_of(session, sha256)
    if size is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no artifact {sha256}")
    if size > settings.max_artifact_bytes:
        raise _too_large(size, settings.max_artifact_bytes)
    return StreamingResponse(
        store.chunks(engine, sha256), media_type=OCTET_STREAM, headers={"content-length": str(size)}
    )
