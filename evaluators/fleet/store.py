"""The artifact store: ONNX bytes in the ``hwsearch_artifacts`` table, keyed by their sha256."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from evaluators.fleet.tables import ArtifactRow


def size_of(session: Session, sha256: str) -> int | None:
    """Size in bytes of the stored artifact, or None when there is none (bytes are not loaded)."""
    return session.scalars(select(ArtifactRow.size_bytes).where(ArtifactRow.sha256 == sha256)).one_or_none()


def read(session: Session, sha256: str) -> bytes | None:
    """The artifact's bytes, or None."""
    return session.scalars(select(ArtifactRow.data).where(ArtifactRow.sha256 == sha256)).one_or_none()


def put(session: Session, sha256: str, data: bytes, *, now: float) -> bool:
    """Store ``data`` under ``sha256`` (the caller verified the digest); False if it was there.

    Two concurrent uploads of one artifact can both get past the check; the second one's commit
    then raises ``IntegrityError``, which callers treat as "already stored".
    """
    if size_of(session, sha256) is not None:
        return False
    session.add(ArtifactRow(sha256=sha256, size_bytes=len(data), data=data, created_at=now))
    session.flush()
    return True
