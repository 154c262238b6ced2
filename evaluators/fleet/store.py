"""The artifact store: ONNX bytes in the database, keyed by their sha256, in fixed-size chunks.

Bytes move through here one chunk at a time in both directions, so storing or serving an artifact
costs about :data:`CHUNK_BYTES` of memory whatever its size (the whole file never sits in memory,
in Python or in the database driver).
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from evaluators.db import session_scope
from evaluators.fleet.tables import ArtifactChunkRow, ArtifactRow

CHUNK_BYTES = 1024 * 1024
"""Size of each stored piece of an artifact (the last one may be shorter)."""


def size_of(session: Session, sha256: str) -> int | None:
    """Size in bytes of the stored artifact, or None when there is none (bytes are not loaded)."""
    return session.scalars(select(ArtifactRow.size_bytes).where(ArtifactRow.sha256 == sha256)).one_or_none()


def put(session: Session, sha256: str, source: BinaryIO, size: int, *, now: float) -> bool:
    """Store the ``size`` bytes of ``source`` under ``sha256``; False if it was there.

    The caller verified the digest. Each chunk is inserted as it is read, so memory stays at
    one chunk. Two concurrent uploads of one artifact can both get past the check; the second
    one's insert or commit then raises ``IntegrityError``, which callers treat as "already stored".
    """
    if size_of(session, sha256) is not None:
        return False
    session.execute(insert(ArtifactRow).values(sha256=sha256, size_bytes=size, data=b"", created_at=now))
    seq = 0
    while chunk := source.read(CHUNK_BYTES):
        session.execute(insert(ArtifactChunkRow).values(sha256=sha256, seq=seq, data=chunk))
        seq += 1
    return True


def _chunk_count(engine: Engine, sha256: str) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(
            select(func.count()).select_from(ArtifactChunkRow).where(ArtifactChunkRow.sha256 == sha256)
        ) or 0)


def chunks(engine: Engine, sha256: str) -> Iterator[bytes]:
    """The artifact's bytes, one chunk per short read (no transaction stays open between chunks).

    Artifacts stored before chunking existed come back in one piece.
    """
    count = _chunk_count(engine, sha256)
    if count == 0:
        with session_scope(engine) as session:
            legacy = session.scalars(select(ArtifactRow.data).where(ArtifactRow.sha256 == sha256)).one_or_none()
        if legacy:
            yield legacy
        return
    for seq in range(count):
        with session_scope(engine) as session:
            piece = session.scalars(select(ArtifactChunkRow.data).where(
                ArtifactChunkRow.sha256 == sha256, ArtifactChunkRow.seq == seq
            )).one()
        yield piece
