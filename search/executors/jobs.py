"""The unit of work executors run: one rung of one trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evaluators.pipeline import RungJob, RungOutcome
from spaces.candidate import Candidate


@dataclass
class Job:
    """A rung job of a RUNNING Optuna trial, as the driver dispatches it.

    Attributes:
        trial: The Optuna trial (only the driver thread writes to it).
        candidate: The trial's candidate.
        rung: What to run (:class:`evaluators.pipeline.RungJob`).
        trial_dir: The trial's folder (artifacts, checkpoints, ``error.log``).
        estimate_s: Estimated seconds (from the cost model) when dispatched.
        resumed_from: ``{trial, rung, checkpoint_sha256}`` when it continues another trial's
            checkpoint after a crash or a stop.
        started_at: ``time.monotonic()`` when dispatched.
    """

    trial: Any
    candidate: Candidate
    rung: RungJob
    trial_dir: Path
    estimate_s: float
    resumed_from: dict[str, Any] | None = None
    started_at: float = 0.0

    @property
    def number(self) -> int:
        """The trial's number."""
        return int(self.trial.number)


@dataclass
class JobDone:
    """A job that ended.

    Invariant: exactly one of ``outcome`` (it ran), ``reason`` (it failed) and ``cancelled``.

    Attributes:
        job: The job.
        outcome: What the rung produced.
        reason: Why it failed (``fail_reason``).
        traceback: The failure's traceback (also in ``error.log`` where it ran).
        worker: ``{host, pid, ...}`` of where it ran.
        cancelled: It stopped because the driver asked (stop or budget).
        artifact: The artifact's bytes when it ran on another host than the driver.
        checkpoint: The checkpoint's bytes when it ran on another host than the driver.
    """

    job: Job
    outcome: RungOutcome | None = None
    reason: str | None = None
    traceback: str | None = None
    worker: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    artifact: bytes | None = None
    checkpoint: bytes | None = None


class JobSlots(Protocol):
    """Where jobs run: threads of this process, or Ray tasks."""

    def capacity(self) -> int:
        """How many jobs may run at once now."""

    def running(self) -> list[Job]:
        """Jobs started and not yet collected."""

    def start(self, job: Job) -> None:
        """Start ``job``."""

    def collect(self, timeout_s: float) -> list[JobDone]:
        """Jobs that ended, waiting up to ``timeout_s`` for the first one."""

    def cancel(self, job: Job | None = None) -> None:
        """Ask ``job`` (or every running job) to stop as soon as it can."""

    def shutdown(self, timeout_s: float) -> bool:
        """Stop every job and wait up to ``timeout_s`` for them to end; True when none is left."""
