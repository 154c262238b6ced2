"""The Optuna objective: trial -> Candidate -> evaluators pipeline -> stored metrics -> values."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Mapping

from search import attrs
from search.samplers import record_constraints
from search.study import worker_identity
from spaces.candidate import Candidate, CandidateError
from spaces.registry import SpaceSpec


CONSTRAINT_NAMES = ("latency_over_budget_ms", "size_over_budget_mb")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["resolution=32", "epochs=1"]`` -> ``{"resolution": 32, "epochs": 1}``, validated.

    Raises:
        CandidateError: For malformed items or unknown Candidate fields.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CandidateError(f"override {item!r} is not KEY=VALUE (e.g. resolution=64)")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key.strip()] = value
    probe = Candidate(backbone="mobilenetv3_small", width=1.0, resolution=64)
    apply_overrides(probe, out)
    return out


def apply_overrides(candidate: Candidate, overrides: Mapping[str, Any]) -> Candidate:
    """``candidate`` with ``overrides`` applied (Candidate field names, ``loss_*`` for the loss mix)."""
    if not overrides:
        return candidate
    return Candidate.from_params({**candidate.to_params(), **overrides})


def untrained_values(space_task: Any, latency_median_ms: float, size_bytes: int) -> list[float]:
    """Objective values of a candidate screened out before training.

    It has no accuracy: accuracy and fairness count as 0 (the worst), latency as measured. Its
    ``constraint`` attribute is positive, so Optuna's samplers and Pareto fronts treat it as
    infeasible.
    """
    pseudo = {"accuracy": 0.0, "fairness": {"fairness_part": 0.0, "spd": 1.0},
              "latency": {"median_ms": latency_median_ms}, "size_bytes": size_bytes, "esfair_score": 0.0}
    return space_task.objective_values(pseudo)


def sample_candidate(space: SpaceSpec, trial: Any, overrides: Mapping[str, Any]) -> Candidate:
    """Sample ``trial``'s Candidate from ``space``, apply ``overrides`` and store it on the trial.

    Stores ``candidate`` and ``candidate_text`` before anything slow happens, so a trial that dies
    later still says what it was running.
    """
    candidate = apply_overrides(space.sample(trial), overrides)
    trial.set_user_attr(attrs.CANDIDATE, candidate.to_params())
    trial.set_user_attr(attrs.CANDIDATE_TEXT, candidate.describe())
    return candidate


def failure_reason(exc: BaseException) -> str:
    """``"<Type>: <first line of the message>"``, at most 500 characters (the ``fail_reason``)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500]


def record_failure(trial: Any, reason: str, trial_dir: Path | None = None, traceback_text: str | None = None) -> None:
    """Store why ``trial`` failed: ``fail_reason``, and the traceback in ``<trial_dir>/error.log``.

    Args:
        trial: The Optuna trial (still RUNNING).
        reason: One line, e.g. from :func:`failure_reason`.
        trial_dir: The trial's folder; ``None`` when the process that ran it wrote ``error.log``.
        traceback_text: Written to ``error.log`` when given with ``trial_dir``.
    """
    if trial_dir is not None and traceback_text is not None:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(traceback_text)
    trial.set_user_attr(attrs.FAIL_REASON, reason[:500])


def record_outcome(trial: Any, outcome: Any, task: Any) -> list[float]:
    """Store a finished ``run_trial`` outcome on ``trial``; returns its objective values.

    The one place where a pipeline outcome becomes trial attributes (see ``search.attrs``), shared
    by the in-process objective and the Ray driver.

    Args:
        trial: The Optuna trial (still RUNNING).
        outcome: ``evaluators.pipeline.TrialOutcome``.
        task: The effective task (objectives and budgets).
    """
    trial.set_user_attr(attrs.SCREEN, outcome.screen.to_dict())
    trial.set_user_attr(attrs.STAGE_SECONDS, outcome.stage_seconds)
    if outcome.metrics is None:
        screen = outcome.screen
        trial.set_user_attr(attrs.LATENCY, screen.latency.to_dict())
        trial.set_user_attr(attrs.TRAINED, False)
        trial.set_user_attr(attrs.FEASIBLE, False)
        trial.set_user_attr(attrs.INFEASIBLE_REASON, screen.reason(task.latency_budget_ms, task.size_budget_mb))
        record_constraints(trial, CONSTRAINT_NAMES, screen.violations)
        return untrained_values(task, screen.latency.median_ms, screen.size_bytes)
    metrics = outcome.metrics.to_dict()
    violations = task.constraint_violations(metrics)
    trial.set_user_attr(attrs.METRICS, metrics)
    trial.set_user_attr(attrs.LATENCY, metrics["latency"])
    trial.set_user_attr(attrs.TRAINED, True)
    trial.set_user_attr(attrs.FEASIBLE, all(v <= 0 for v in violations))
    if not all(v <= 0 for v in violations):
        trial.set_user_attr(attrs.INFEASIBLE_REASON, "final artifact over budget: "
                            f"latency {metrics['latency']['median_ms']:.2f} ms, "
                            f"size {metrics['size_bytes'] / 1e6:.2f} MB")
    record_constraints(trial, CONSTRAINT_NAMES, violations)
    trial.set_user_attr(attrs.ARTIFACT_PATH, metrics["artifact_path"])
    trial.set_user_attr(attrs.ARTIFACT_SHA256, metrics["artifact_sha256"])
    return task.objective_values(metrics)


class TrialRunner:
    """Callable Optuna objective for one search, running each trial in this process.

    Invariants: every trial it runs stores ``worker``, ``candidate`` and ``screen`` before anything
    slow happens; a failing trial stores ``fail_reason`` and its traceback in
    ``<out>/trial_<n>/error.log`` and re-raises (Optuna marks it FAIL).
    """

    def __init__(self, space: SpaceSpec, ctx: Any, study_dir: Path, overrides: Mapping[str, Any]) -> None:
        self.space = space
        self.ctx = ctx
        self.study_dir = study_dir
        self.overrides = dict(overrides)

    def __call__(self, trial: Any) -> list[float]:
        from evaluators.pipeline import run_trial

        trial.set_user_attr(attrs.WORKER, worker_identity())
        candidate = sample_candidate(self.space, trial, self.overrides)
        trial_dir = self.study_dir / f"trial_{trial.number}"
        try:
            outcome = run_trial(candidate, self.ctx, trial_dir)
        except Exception as exc:
            record_failure(trial, failure_reason(exc), trial_dir, traceback.format_exc())
            raise
        return record_outcome(trial, outcome, self.ctx.task)
