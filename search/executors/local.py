"""The local backend: ``--jobs N`` trials at once in threads of this process (no Ray).

Each trial runs the in-process objective (:class:`search.objective.TrialRunner`) in a daemon
thread, so an interrupt stops the launcher at once; the interrupted trials are marked failed and
run again on resume. Call :func:`preload_pipeline_modules` before running pipeline trials in
threads: two threads importing timm for the first time deadlock on its circular imports.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from search.executors.budget import TrialBudget
from search.executors.driver import Finished, run_trials
from search.objective import failure_reason

PIPELINE_MODULES = (
    "timm", "torch_pruning", "onnx", "onnxruntime", "onnxruntime.quantization", "evaluators.data",
    "evaluators.models", "evaluators.pruning", "evaluators.export", "evaluators.quantization",
    "evaluators.fingerprint", "evaluators.complexity", "evaluators.evaluate", "evaluators.losses",
    "evaluators.metrics", "evaluators.training", "evaluators.teacher",
)
"""Modules the trial pipeline imports lazily (imported once, in one thread, before the trials)."""


def preload_pipeline_modules() -> None:
    """Import :data:`PIPELINE_MODULES` in this thread."""
    import importlib

    for name in PIPELINE_MODULES:
        importlib.import_module(name)


class ThreadSlots:
    """Runs ``objective(trial) -> values`` for up to ``jobs`` trials at once, one thread each.

    Args:
        objective: The in-process objective; an exception fails the trial (its reason is stored).
        jobs: Trials at once.
    """

    def __init__(self, objective: Callable[[Any], Sequence[float]], jobs: int) -> None:
        if jobs < 1:
            raise ValueError("jobs must be >= 1")
        self.objective = objective
        self.jobs = jobs
        self._running: dict[int, Any] = {}
        self._done: queue.Queue[Finished] = queue.Queue()

    def capacity(self) -> int:
        """``jobs``."""
        return self.jobs

    def running(self) -> list[Any]:
        """Trials started and not yet collected."""
        return list(self._running.values())

    def start(self, trial: Any) -> None:
        """Run ``trial`` in a new daemon thread."""
        self._running[trial.number] = trial
        threading.Thread(target=self._run, args=(trial,), name=f"hwsearch-trial-{trial.number}", daemon=True).start()

    def _run(self, trial: Any) -> None:
        try:
            values = list(self.objective(trial))
        except Exception as exc:  # noqa: BLE001 - any failure fails the trial, as catch=(Exception,) does
            self._done.put(Finished(trial, None, failure_reason(exc)))
            return
        self._done.put(Finished(trial, values))

    def collect(self, timeout_s: float) -> list[Finished]:
        """Finished trials, waiting up to ``timeout_s`` for the first."""
        try:
            finished = [self._done.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                break
        for done in finished:
            self._running.pop(done.trial.number, None)
        return finished

    def abandon(self) -> None:
        """Forget the running threads (daemons: they end with the process)."""
        self._running.clear()


def run_local(
    study: Any, budget: TrialBudget, objective: Callable[[Any], Sequence[float]], *, jobs: int,
    callbacks: Sequence[Callable[[Any, Any], None]] = (), timeout_s: float | None = None,
) -> None:
    """Run the study's trials in this process, ``jobs`` at once, until ``budget`` is reached."""
    run_trials(study, ThreadSlots(objective, jobs), budget, callbacks=callbacks, timeout_s=timeout_s)
