"""Progress bar, per-trial log lines and safety callbacks for ``study.optimize``."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from search import attrs


def trial_log_line(trial: Any) -> str:
    """One line on a finished trial: outcome, figures, candidate and wall-clock."""
    candidate = trial.user_attrs.get(attrs.CANDIDATE_TEXT, "")
    seconds = f"{trial.duration.total_seconds():.0f} s" if trial.duration else "?"
    metrics = trial.user_attrs.get(attrs.METRICS)
    if trial.state.name == "FAIL":
        return f"trial {trial.number} FAILED after {seconds}: {trial.user_attrs.get(attrs.FAIL_REASON, '')}"
    if trial.user_attrs.get(attrs.TRAINED) and metrics:
        return (f"trial {trial.number} trained in {seconds}: acc {metrics['accuracy']:.3f} "
                f"fair {metrics['fairness']['fairness_part']:.3f} lat {metrics['latency']['median_ms']:.2f} ms "
                f"| {candidate}")
    reason = trial.user_attrs.get(attrs.INFEASIBLE_REASON, "infeasible")
    return f"trial {trial.number} screened out in {seconds}: {reason} | {candidate}"


class ProgressCallback:
    """A tqdm bar over the trial budget showing the best feasible figures so far.

    Invariant: the bar advances once per finished trial (complete or failed), and its postfix
    shows the best validation accuracy, the best fairness part and the lowest latency among the
    feasible trained trials. With the bar disabled (``--no-progress``, e.g. under docker compose)
    each finished trial prints one :func:`trial_log_line` to ``log`` instead, so logs still tell
    what happened.
    """

    def __init__(self, total: int, initial: int, *, disable: bool = False, log: TextIO | None = None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, desc="trials", unit="trial", disable=disable,
                        dynamic_ncols=True)
        self.log = (log or sys.stdout) if disable else None
        self.best: dict[str, float] = {}

    def __call__(self, study: Any, trial: Any) -> None:
        self.bar.update(1)
        metrics = trial.user_attrs.get(attrs.METRICS)
        if trial.state.name == "COMPLETE" and metrics and trial.user_attrs.get(attrs.FEASIBLE):
            self.best["acc"] = max(self.best.get("acc", 0.0), metrics["accuracy"])
            self.best["fair"] = max(self.best.get("fair", 0.0), metrics["fairness"]["fairness_part"])
            lat = metrics["latency"]["median_ms"]
            self.best["lat_ms"] = min(self.best.get("lat_ms", lat), lat)
        last = "trained" if trial.user_attrs.get(attrs.TRAINED) else (
            "screened out" if trial.state.name == "COMPLETE" else "FAILED")
        self.bar.set_postfix({**{k: round(v, 3) for k, v in self.best.items()}, "last": last})
        if self.log is not None:
            print(trial_log_line(trial), file=self.log, flush=True)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


class FailureGuard:
    """Stops the study after ``limit`` consecutive failed trials (a broken setup, not bad luck).

    Attributes:
        tripped: Reason string once the guard stopped the study, else None.
    """

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.streak = 0
        self.tripped: str | None = None

    def __call__(self, study: Any, trial: Any) -> None:
        if trial.state.name != "FAIL":
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= self.limit:
            reason = trial.user_attrs.get(attrs.FAIL_REASON) or trial.system_attrs.get("fail_reason", "")
            self.tripped = f"{self.limit} trials in a row failed; the last one: {reason}"
            study.stop()
