"""Request and response bodies of the coordinator's API (pydantic; a 422 names the bad field).

Unknown fields are refused (``extra="forbid"``), so a typo in a client is a 422, not silence.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from evaluators.fleet.protocol import (
    AGENT_ID_PATTERN,
    DEVICE_TAG_PATTERN,
    JOB_ID_PATTERN,
    LEASE_ID_PATTERN,
    MAX_INPUT_ELEMENTS,
    MAX_LATENCY_MS,
    MAX_RUNS,
    MAX_TIMED_MS,
    SHA256_PATTERN,
    effective_input_elements,
)

DeviceTag = Annotated[str, StringConstraints(pattern=DEVICE_TAG_PATTERN)]
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)]
LeaseId = Annotated[str, StringConstraints(pattern=LEASE_ID_PATTERN)]
JobId = Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)]
Sha256 = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Millis = Annotated[float, Field(ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentRegistration(_Strict):
    """What an agent says about itself when it (re)connects."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    device_tag: DeviceTag
    device: ShortText
    machine: Annotated[str, StringConstraints(max_length=32)] = ""
    cores: int = Field(ge=1, le=4096)
    ram_mb: int = Field(ge=0, le=1 << 30)
    runtime: Annotated[str, StringConstraints(max_length=64)]
    python: Annotated[str, StringConstraints(max_length=32)] = ""
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=16
    )


class AgentRegistered(BaseModel):
    """The coordinator's answer to a registration: the agent's id and its timing contract."""

    agent_id: str
    heartbeat_seconds: float
    lease_seconds: float
    max_wait_seconds: float


class AgentEnrolled(AgentRegistered):
    """The answer to an enrolment: also the agent's own credential, shown this once.

    The coordinator keeps only its SHA-256; the agent sends it as ``Authorization: Bearer
    <credential>`` from then on.
    """

    credential: str


class AgentView(BaseModel):
    """An agent as listed by ``GET /v1/agents``."""

    id: str
    name: str
    device_tag: str
    device: str
    machine: str
    cores: int
    ram_mb: int
    runtime: str
    python: str
    tags: list[str]
    live: bool
    stopped: bool
    enrolled: bool
    revoked: bool
    last_seen_seconds_ago: float
    jobs_done: int
    jobs_failed: int


class BenchmarkSettings(_Strict):
    """``evaluators.contracts.LatencySettings`` on the wire, with bounds a device can honour."""

    threads: int = Field(default=1, ge=1, le=256)
    warmup: int = Field(default=5, ge=0, le=10_000)
    min_repeats: int = Field(default=20, ge=1, le=1_000_000)
    max_repeats: int = Field(default=500, ge=1, le=1_000_000)
    min_time_s: float = Field(default=0.5, ge=0.0, le=3600.0, allow_inf_nan=False)
    cores: list[Annotated[int, Field(ge=0, le=4095)]] | None = Field(default=None, max_length=4096)
    batch: int = Field(default=1, ge=1, le=4096)
    min_rounds: int = Field(default=1, ge=1, le=1000)
    max_rounds: int = Field(default=1, ge=1, le=1000)
    target_ci: float = Field(default=0.05, ge=0.0, le=1.0, allow_inf_nan=False)
    max_time_s: float = Field(default=8.0, ge=0.0, le=3600.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _repeats_ordered(self) -> "BenchmarkSettings":
        if self.max_repeats < self.min_repeats:
            raise ValueError("max_repeats must be >= min_repeats")
        if self.max_rounds < self.min_rounds:
            raise ValueError("max_rounds must be >= min_rounds")
        return self


class JobRequest(_Strict):
    """A latency measurement to queue.

    ``id`` (optional, chosen by the client) makes the request idempotent: a retry after a lost
    response returns the job the first attempt created instead of queueing a second one.
    """

    id: JobId | None = None
    device_tag: DeviceTag
    artifact_sha256: Sha256
    input_shape: list[Annotated[int, Field(ge=1, le=1 << 20)]] = Field(min_length=1, max_length=8)
    settings: BenchmarkSettings = Field(default_factory=BenchmarkSettings)
    max_attempts: int | None = Field(default=None, ge=1, le=100)

    @field_validator("input_shape")
    @classmethod
    def _shape_not_huge(cls, shape: list[int]) -> list[int]:
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"the input has more than {MAX_INPUT_ELEMENTS} elements")
        return shape

    @model_validator(mode="after")
    def _timed_input_not_huge(self) -> "JobRequest":
        elements = effective_input_elements(self.input_shape, self.settings.batch)
        if elements > MAX_INPUT_ELEMENTS:
            raise ValueError(
                f"the timed input (input_shape with batch {self.settings.batch}) has {elements} elements, "
                f"over the cap of {MAX_INPUT_ELEMENTS}: lower settings.batch or the input size"
            )
        return self


class JobView(BaseModel):
    """A job's state, and its result or error once it is finished."""

    id: str
    state: str
    device_tag: str
    artifact_sha256: str
    input_shape: list[int]
    settings: dict[str, Any]
    attempts: int
    max_attempts: int
    agent_id: str | None
    created_at: float
    claimed_at: float | None
    finished_at: float | None
    result: dict[str, Any] | None
    error: str | None
    note: str | None


class ClaimRequest(_Strict):
    """An agent asking for work, waiting up to ``wait_s`` for a job to appear."""

    wait_s: float = Field(default=0.0, ge=0.0, le=3600.0, allow_inf_nan=False)


class ClaimedJob(BaseModel):
    """A job leased to the claiming agent."""

    id: str
    lease_id: str
    artifact_sha256: str
    artifact_size: int
    input_shape: list[int]
    settings: dict[str, Any]
    attempt: int
    max_attempts: int
    lease_seconds: float
    heartbeat_seconds: float


class LeaseRef(_Strict):
    """Which lease an agent's request is about."""

    agent_id: AgentId
    lease_id: LeaseId


class Heartbeat(LeaseRef):
    """A running job's heartbeat."""


class LeaseExtended(BaseModel):
    """The answer to a heartbeat: the lease now runs ``lease_seconds`` more."""

    lease_seconds: float


_ROUNDING = 1e-9
"""Relative slack for figures computed in floating point (the mean of equal times)."""


class Measurement(_Strict):
    """What the agent measured: statistics in milliseconds and what ran them.

    Invariants (a 422 otherwise): every figure is finite; ``0 < min <= median <= p90 <= max``
    (``max`` when sent; older agents omit it), ``min <= mean``, every latency at most
    ``MAX_LATENCY_MS``; ``1 <= n <= MAX_RUNS`` and ``n * min_ms <= MAX_TIMED_MS`` (the timed runs
    fit in a week). ``source`` is ``emulated`` when the agent runs under an emulator.
    """

    median_ms: Millis
    p90_ms: Millis
    mean_ms: Millis
    std_ms: Millis
    min_ms: Millis
    max_ms: Millis | None = None
    n: int = Field(ge=1, le=MAX_RUNS)
    threads: int = Field(ge=1, le=256)
    device: ShortText
    runtime: Annotated[str, StringConstraints(max_length=128)]
    peak_memory_mb: float | None = Field(default=None, ge=0.0, le=float(1 << 30), allow_inf_nan=False)
    source: Literal["measured", "emulated"] = "measured"
    rounds: int = Field(default=1, ge=1, le=1000)
    round_medians_ms: list[Millis] | None = Field(default=None, max_length=1000)
    ci_low_ms: Millis | None = None
    ci_high_ms: Millis | None = None

    @model_validator(mode="after")
    def _rounds_consistent(self) -> "Measurement":
        if self.round_medians_ms is not None and len(self.round_medians_ms) != self.rounds:
            raise ValueError("round_medians_ms must hold one median per round")
        if (self.ci_low_ms is None) != (self.ci_high_ms is None):
            raise ValueError("ci_low_ms and ci_high_ms come together")
        if self.ci_low_ms is not None and self.ci_high_ms is not None and self.ci_low_ms > self.ci_high_ms:
            raise ValueError("ci_low_ms must be <= ci_high_ms")
        return self

    @model_validator(mode="after")
    def _plausible(self) -> "Measurement":
        ordered = [self.min_ms, self.median_ms, self.p90_ms] + ([self.max_ms] if self.max_ms is not None else [])
        if not self.min_ms > 0:
            raise ValueError("min_ms must be above 0: a model cannot run in no time")
        if ordered != sorted(ordered):
            raise ValueError("the figures must satisfy min_ms <= median_ms <= p90_ms <= max_ms")
        slack = _ROUNDING * (self.max_ms if self.max_ms is not None else self.p90_ms)
        if self.mean_ms < self.min_ms - slack or (self.max_ms is not None and self.mean_ms > self.max_ms + slack):
            raise ValueError("mean_ms must lie between min_ms and max_ms")
        if self.max_ms is not None and self.std_ms > self.max_ms - self.min_ms + slack:
            raise ValueError("std_ms cannot exceed max_ms - min_ms")
        if self.n * self.min_ms > MAX_TIMED_MS:
            raise ValueError(f"n * min_ms is over {MAX_TIMED_MS:.0f} ms: the timed runs cannot have taken that long")
        return self


class ResultReport(LeaseRef):
    """A finished measurement."""

    measurement: Measurement


class FailureReport(LeaseRef):
    """A job the agent could not measure; ``retryable`` when another try may succeed."""

    error: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    retryable: bool = False


class CancelRequest(_Strict):
    """Why a job is cancelled."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = "cancelled by the requester"


class ArtifactStored(BaseModel):
    """The answer to an upload."""

    sha256: str
    size_bytes: int
    created: bool


class FleetStats(BaseModel):
    """Job counts by state and live agents by device tag."""

    jobs: dict[str, int]
    live_agents: dict[str, int]
