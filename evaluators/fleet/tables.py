"""The fleet's SQL tables, beside Optuna's in the study's database.

All times are coordinator-clock epoch seconds (floats): agents' clocks never enter a lease
decision. Artifact bytes live in the database, keyed by sha256, so the coordinator keeps no state
outside it and any number of coordinator processes (or a restarted one) see the same queue.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from evaluators.db import Base


class AgentRow(Base):
    """A registered agent: one run of ``python -m evaluators.agent`` on one device.

    Invariant: ``last_seen_at`` is updated by every request the agent makes, so an agent is live
    while ``now - last_seen_at`` is below the coordinator's liveness window and it has not said
    goodbye (``stopped``).
    """

    __tablename__ = "hwsearch_agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    device_tag: Mapped[str] = mapped_column(String(64), index=True)
    device: Mapped[str] = mapped_column(String(256))
    machine: Mapped[str] = mapped_column(String(32))
    cores: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    runtime: Mapped[str] = mapped_column(String(64))
    python: Mapped[str] = mapped_column(String(32))
    tags_json: Mapped[str] = mapped_column(Text, default="[]")
    registered_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    stopped: Mapped[bool] = mapped_column(default=False)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    jobs_failed: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def tags(self) -> list[str]:
        """The agent's free-form tags."""
        return list(json.loads(self.tags_json))


class AgentCredentialRow(Base):
    """The credential of an enrolled agent: only the SHA-256 of its secret is stored.

    Invariants: one row per enrolled agent, written once at enrolment; ``revoked_at`` is set at
    most once and never cleared, so a revoked agent stays locked out (it must enrol as a new
    agent). Agents that registered with the shared token (legacy mode) have no row.
    """

    __tablename__ = "hwsearch_agent_credentials"

    agent_id: Mapped[str] = mapped_column(ForeignKey("hwsearch_agents.id"), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    enrolled_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ArtifactRow(Base):
    """An uploaded ONNX file.

    Invariant: ``sha256`` is the digest of the bytes, checked on upload. The bytes live in
    :class:`ArtifactChunkRow` rows (``seq`` 0, 1, ...); ``data`` is empty for those and holds the
    whole file only for artifacts stored before chunking existed.
    """

    __tablename__ = "hwsearch_artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[float] = mapped_column(Float)


class ArtifactChunkRow(Base):
    """One piece of an artifact's bytes; concatenated by ``seq`` they hash to ``sha256``."""

    __tablename__ = "hwsearch_artifact_chunks"

    sha256: Mapped[str] = mapped_column(ForeignKey("hwsearch_artifacts.sha256"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class JobRow(Base):
    """One latency measurement to make on a device of ``device_tag``.

    States: ``queued -> leased -> done | failed``, ``leased -> queued`` (lease expired, released,
    or a retryable failure) and ``queued | leased -> cancelled``. Invariants: ``lease_id`` and
    ``agent_id`` are set exactly while ``leased`` (``agent_id`` keeps the last holder afterwards);
    ``attempts`` counts the leases that ended without a release; ``result_json`` is written once,
    by the single ``leased -> done`` transition.
    """

    __tablename__ = "hwsearch_jobs"
    __table_args__ = (Index("ix_hwsearch_jobs_claim", "state", "device_tag", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    device_tag: Mapped[str] = mapped_column(String(64))
    artifact_sha256: Mapped[str] = mapped_column(ForeignKey("hwsearch_artifacts.sha256"))
    input_shape_json: Mapped[str] = mapped_column(Text)
    settings_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    @property
    def input_shape(self) -> list[int]:
        """The input shape the job benchmarks (NCHW)."""
        return list(json.loads(self.input_shape_json))

    @property
    def settings(self) -> dict[str, Any]:
        """``LatencySettings.to_dict()`` of the job."""
        return dict(json.loads(self.settings_json))

    @property
    def result(self) -> dict[str, Any] | None:
        """``LatencyResult.to_dict()`` once done, else None."""
        return None if self.result_json is None else dict(json.loads(self.result_json))
