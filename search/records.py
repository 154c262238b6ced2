"""The one place where what a trial produced becomes trial attributes (layout: :mod:`search.attrs`).

Only the driver thread writes to the study; jobs running in threads or Ray tasks return their
outcomes and the functions here store them, so a job that is cancelled or dies never leaves a
half-written trial.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from search import attrs
from search.samplers import record_constraints
from spaces.candidate import Candidate
from spaces.registry import SampleContext, SpaceSpec
from spaces.task import Task


def failure_reason(exc: BaseException) -> str:
    """``"<Type>: <first line of the message>"``, at most 500 characters (the ``fail_reason``)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500]


def record_failure(trial: Any, reason: str, trial_dir: Path | None = None, traceback_text: str | None = None) -> None:
    """Store why ``trial`` failed: ``fail_reason``, and the traceback in ``<trial_dir>/error.log``."""
    if trial_dir is not None and traceback_text is not None:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "error.log").write_text(traceback_text)
    trial.set_user_attr(attrs.FAIL_REASON, reason[:500])


def sample_candidate(space: SpaceSpec, trial: Any, overrides: Mapping[str, Any], context: SampleContext) -> Candidate:
    """Sample ``trial``'s Candidate, apply ``overrides`` and store it on the trial before anything slow."""
    candidate = space.sample(trial, context)
    if overrides:
        candidate = Candidate.from_params({**candidate.to_params(), **overrides})
    trial.set_user_attr(attrs.CANDIDATE, candidate.to_params())
    trial.set_user_attr(attrs.CANDIDATE_TEXT, candidate.describe())
    return candidate


def record_screened_out(trial: Any, outcome: Any, task: Task) -> list[float]:
    """Store a candidate stopped before training; returns its objective values (the task's worst).

    It failed screening (over a budget), or its first rung's cost probe projected more training
    seconds than the search lets a first rung cost (``outcome.too_costly``). Either way Optuna
    sees a COMPLETE trial with the screen's known figures and the worst values for the rest, and
    the floors it cannot meet violated, so the samplers learn to avoid the region. A too-costly
    candidate is infeasible for this search whatever its figures: every constraint the samplers
    read is at least 1 (violated), also when no floor is set.
    """
    screen = outcome.screen
    known = screen.metrics()
    trial.set_user_attr(attrs.SCREEN, screen.to_dict())
    trial.set_user_attr(attrs.STAGE_SECONDS, dict(outcome.stage_seconds))
    trial.set_user_attr(attrs.LATENCY, screen.latency.to_dict())
    trial.set_user_attr(attrs.TRAINED, False)
    trial.set_user_attr(attrs.FEASIBLE, False)
    reason = task.violation_reasons(known) or "screened out"
    if outcome.too_costly is not None:
        probe = outcome.too_costly
        trial.set_user_attr(attrs.TOO_COSTLY, dict(probe))
        reason = (f"too costly for this budget: its first rung would train ~{probe['projected_s']:.0f} s, over "
                  f"{probe['limit_s']:.0f} s (--max-first-rung-share)")
    trial.set_user_attr(attrs.INFEASIBLE_REASON, reason)
    violations = task.screened_out_violations(known)
    if outcome.too_costly is not None:
        violations = {name: max(float(value), 1.0) for name, value in violations.items()}
    record_constraints(trial, violations)
    return task.screened_out_values(known)


def rung_record(outcome: Any, task: Task, *, resumed_from: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``rung.<r>`` record of a finished rung job."""
    metrics = outcome.metrics.to_dict()
    violations = task.constraint_violations(metrics)
    screen_checks = {c: v for c, v in violations.items() if not c.endswith("_past_floor")}
    floor_violation = sum(max(0.0, v) for c, v in violations.items() if c.endswith("_past_floor"))
    return {
        "rung": outcome.job.rung, "epochs": outcome.job.epochs, "epoch_share": outcome.job.epoch_share,
        "values": task.objective_values(metrics),
        "feasible": all(v <= 0 for v in screen_checks.values()), "floor_violation": floor_violation,
        "figures": {"accuracy": metrics["accuracy"], "fairness": metrics["fairness"], "scores": metrics["scores"],
                    "latency_ms": metrics["latency"]["median_ms"], "intervals": metrics["intervals"]},
        "checkpoint": outcome.checkpoint.to_dict() if outcome.checkpoint else None,
        "seconds": sum(outcome.stage_seconds.values()), "stage_seconds": outcome.stage_seconds,
        "train_epochs": outcome.job.train_epochs, "train_s": outcome.stage_seconds.get("train", 0.0),
        "kd": outcome.kd_applied, "teacher_accuracy": outcome.teacher_accuracy, "train_windows": outcome.train_windows,
        "resumed_from": dict(resumed_from) if resumed_from else None, "finished_at": time.time(),
        "projected_train_s": getattr(outcome, "projected_train_s", None),
    }


def record_rung(trial: Any, outcome: Any, task: Task, record: Mapping[str, Any]) -> None:
    """Store a finished rung: its record, and the rung's metrics as the trial's current figures."""
    if outcome.screen is not None:
        trial.set_user_attr(attrs.SCREEN, outcome.screen.to_dict())
    metrics = outcome.metrics.to_dict()
    previous = trial.user_attrs.get(attrs.STAGE_SECONDS) or {}
    stages = {k: previous.get(k, 0.0) + outcome.stage_seconds.get(k, 0.0) for k in {*previous, *outcome.stage_seconds}}
    trial.set_user_attr(attrs.rung_key(outcome.job.rung), dict(record))
    trial.set_user_attr(attrs.RUNG, outcome.job.rung)
    trial.set_user_attr(attrs.STAGE_SECONDS, stages)
    trial.set_user_attr(attrs.METRICS, metrics)
    trial.set_user_attr(attrs.LATENCY, metrics["latency"])
    trial.set_user_attr(attrs.TRAINED, True)
    trial.set_user_attr(attrs.ARTIFACT_PATH, metrics["artifact_path"])
    trial.set_user_attr(attrs.ARTIFACT_SHA256, metrics["artifact_sha256"])


def record_complete(trial: Any, task: Task) -> list[float]:
    """Store the top rung's verdict on a trained trial (budgets and floors); returns its values."""
    metrics = trial.user_attrs[attrs.METRICS]
    violations = task.constraint_violations(metrics)
    feasible = all(v <= 0 for v in violations.values())
    trial.set_user_attr(attrs.FEASIBLE, feasible)
    if not feasible:
        trial.set_user_attr(attrs.INFEASIBLE_REASON, task.violation_reasons(metrics))
    record_constraints(trial, violations)
    return task.objective_values(metrics)


def record_stopped(trial: Any, reason: str) -> None:
    """Store why a trained trial stops below the top rung (it is told PRUNED)."""
    trial.set_user_attr(attrs.STOPPED, reason[:500])
    trial.set_user_attr(attrs.FEASIBLE, False)


def record_decision(trial: Any, decision: Any) -> None:
    """Store a promotion decision (:class:`search.promotion.Decision`) on the rung it was made for."""
    rung = trial.user_attrs.get(attrs.RUNG)
    record = dict(trial.user_attrs.get(attrs.rung_key(rung)) or {})
    record["decision"] = {"promote": decision.promote, "position": decision.position,
                          "competitors": decision.competitors, "quota": decision.quota, "reason": decision.reason}
    trial.set_user_attr(attrs.rung_key(rung), record)
