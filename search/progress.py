"""Progress of a search: a bar over the time budget with the rung occupancy and the best figures,
per-trial log lines, and the failure guard.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO

from search import attrs
from spaces.task import Task


def _figures(task: Task, values: Sequence[float] | None) -> str:
    if not values:
        return ""
    return " ".join(f"{o.name} {v:.3g}" for o, v in zip(task.objectives, values))


def trial_log_line(trial: Any, task: Task) -> str:
    """One line on a told trial: outcome, rung, figures, candidate and wall-clock."""
    candidate = trial.user_attrs.get(attrs.CANDIDATE_TEXT, "")
    seconds = f"{trial.duration.total_seconds():.0f} s" if trial.duration else "?"
    state = trial.state.name
    rung = trial.user_attrs.get(attrs.RUNG)
    record = trial.user_attrs.get(attrs.rung_key(rung)) if rung is not None else None
    if state == "FAIL":
        return f"trial {trial.number} FAILED after {seconds}: {trial.user_attrs.get(attrs.FAIL_REASON, '')}"
    if state == "PRUNED":
        figures = _figures(task, (record or {}).get("values"))
        return (f"trial {trial.number} stopped at rung {rung} after {seconds}: {figures} | "
                f"{trial.user_attrs.get(attrs.STOPPED, '')} | {candidate}")
    if trial.user_attrs.get(attrs.TRAINED):
        verdict = "" if trial.user_attrs.get(attrs.FEASIBLE) else f" INFEASIBLE ({trial.user_attrs.get(attrs.INFEASIBLE_REASON)})"
        epochs = (record or {}).get("epochs", "?")
        return f"trial {trial.number} complete in {seconds} ({epochs} epochs): {_figures(task, trial.values)}{verdict} | {candidate}"
    reason = trial.user_attrs.get(attrs.INFEASIBLE_REASON, "infeasible")
    return f"trial {trial.number} screened out in {seconds}: {reason} | {candidate}"


def occupancy_text(finished: dict[int, int], running: dict[int, int], rungs: Sequence[int],
                   first_look: float = 1.0) -> str:
    """``"1ep:12(+1) 3ep:4 9ep:1"``: candidates that finished each rung (running ones in brackets);
    a first look at a share of an epoch reads ``"1/3ep"``."""
    parts = []
    for r, epochs in enumerate(rungs):
        extra = f"(+{running[r]})" if running.get(r) else ""
        parts.append(f"{attrs.rung_label(epochs, first_look if r == 0 else 1.0)}ep:{finished.get(r, 0)}{extra}")
    return " ".join(parts)


class SearchProgress:
    """A tqdm bar over the remaining budget (seconds), showing rung occupancy and the best figures.

    Invariant: the postfix shows, per rung, the candidates that finished it (and those running
    it), and the best value of each objective among feasible top-rung trials. With the bar
    disabled (``--no-progress``, e.g. under docker compose) each told trial prints one
    :func:`trial_log_line` to ``log`` instead, so logs still tell what happened.
    """

    def __init__(self, budget_s: float, task: Task, rungs: Sequence[int], *, disable: bool = False,
                 log: TextIO | None = None, first_look: float = 1.0) -> None:
        from tqdm.auto import tqdm

        self.task = task
        self.rungs = list(rungs)
        self.first_look = first_look
        self.bar = tqdm(total=round(budget_s), desc="search", unit="s", disable=disable, dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s [{elapsed}] {postfix}")
        self.log = (log or sys.stdout) if disable else None
        self.best: dict[str, float] = {}
        self.occupancy = ""
        self.last = ""
        self._parked: set[tuple[int, int]] = set()

    def set_rungs(self, rungs: Sequence[int]) -> None:
        """The ladder, once the search has chosen it."""
        self.rungs = list(rungs)

    def write(self, line: str) -> None:
        """Print a line above the bar (or into the log)."""
        if self.log is not None:
            print(line, file=self.log, flush=True)
        else:
            self.bar.write(line)

    def tick(self, driver: Any) -> None:
        """Advance to the driver's elapsed seconds and show the rung occupancy."""
        self.occupancy = occupancy_text(driver.rung_counts, driver.running_by_rung(), self.rungs, self.first_look)
        elapsed = min(round(driver.spent.elapsed()), self.bar.total)
        if elapsed > self.bar.n:
            self.bar.update(elapsed - self.bar.n)
        self.bar.set_postfix_str(self._postfix(), refresh=False)

    def _postfix(self) -> str:
        best = " ".join(f"{k} {v:.3g}" for k, v in self.best.items())
        return f"{self.occupancy}" + (f" | best {best}" if best else "") + (f" | last {self.last}" if self.last else "")

    def rung_finished(self, job: Any, record: dict[str, Any], kind: str, reason: str) -> None:
        """Show a finished rung at once (a trial's first figures arrive after its first rung)."""
        verdict = {"complete": "complete", "continue": "promoted", "wait": "waits for a decision",
                   "stop": "stopped"}[kind]
        share = record.get("epoch_share") or 1.0
        epochs = attrs.rung_label(record["epochs"], share)
        unit = "epochs" if record["epochs"] != 1 and share >= 1 else "epoch"
        self.last = f"#{job.number} {epochs}ep {_figures(self.task, record.get('values'))} {verdict}"
        self.bar.set_postfix_str(self._postfix())
        parked_again = kind == "wait" and (job.number, record["rung"]) in self._parked
        if kind == "wait":
            self._parked.add((job.number, record["rung"]))
        if self.log is not None and kind in ("continue", "wait") and not parked_again:
            print(f"trial {job.number} rung {record['rung']} ({epochs} {unit}) in {record['seconds']:.0f} s: "
                  f"{_figures(self.task, record.get('values'))} -> {verdict}" + (f" ({reason})" if reason else ""),
                  file=self.log, flush=True)

    def __call__(self, study: Any, trial: Any) -> None:
        if trial.state.name == "COMPLETE" and trial.user_attrs.get(attrs.FEASIBLE) and trial.values:
            for objective, value in zip(self.task.objectives, trial.values):
                current = self.best.get(objective.name)
                better = current is None or (value > current if objective.maximize else value < current)
                self.best[objective.name] = value if better else current  # type: ignore[assignment]
        self.bar.set_postfix_str(self._postfix())
        if self.log is not None:
            print(trial_log_line(trial, self.task), file=self.log, flush=True)

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
