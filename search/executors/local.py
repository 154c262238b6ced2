"""The local backend: ``--jobs N`` rung jobs at once in threads of this process (no Ray).

Each job runs :func:`evaluators.pipeline.run_rung` in its own thread with its own cancel flag; a
cancelled job stops at its next training step (:class:`evaluators.pipeline.TrialCancelled`), so a
stop or the end of the budget never leaves a thread computing while the interpreter exits (the
cause of "terminate called without an active exception"). Call
:func:`preload_pipeline_modules` first: two threads importing timm for the first time deadlock on
its circular imports.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
import traceback
from typing import Any

from search.executors.jobs import Job, JobDone
from search.records import failure_reason
from search.study import worker_identity

PIPELINE_MODULES = (
    "timm", "torch_pruning", "onnx", "onnxruntime", "onnxruntime.quantization", "evaluators.data",
    "evaluators.models", "evaluators.pruning", "evaluators.export", "evaluators.quantization",
    "evaluators.fingerprint", "evaluators.complexity", "evaluators.evaluate", "evaluators.losses",
    "evaluators.metrics", "evaluators.training", "evaluators.teacher", "evaluators.intervals",
)
"""Modules the trial pipeline imports lazily (imported once, in one thread, before the trials)."""


def preload_pipeline_modules() -> None:
    """Import :data:`PIPELINE_MODULES` in this thread."""
    import importlib

    for name in PIPELINE_MODULES:
        importlib.import_module(name)


def run_job(job: Job, ctx: Any) -> JobDone:
    """Run one rung job here; never raises for a failing or cancelled job."""
    from evaluators.pipeline import TrialCancelled, run_rung

    identity = worker_identity()
    try:
        outcome = run_rung(job.candidate, ctx, job.trial_dir, job.rung)
    except TrialCancelled:
        return JobDone(job, cancelled=True, worker=identity)
    except Exception as exc:  # noqa: BLE001 - any failure fails the trial, as catch=(Exception,) does
        text = traceback.format_exc()
        job.trial_dir.mkdir(parents=True, exist_ok=True)
        (job.trial_dir / "error.log").write_text(text)
        return JobDone(job, reason=failure_reason(exc), traceback=text, worker=identity)
    return JobDone(job, outcome=outcome, worker=identity)


class ThreadSlots:
    """Runs up to ``jobs`` rung jobs at once, one thread each, on a shared trial context.

    Args:
        ctx: The search's ``TrialContext`` (each job gets a copy with its own cancel flag).
        jobs: Jobs at once.
    """

    def __init__(self, ctx: Any, jobs: int) -> None:
        if jobs < 1:
            raise ValueError("jobs must be >= 1")
        self.ctx = ctx
        self.jobs = jobs
        self._running: dict[int, tuple[Job, threading.Event, threading.Thread]] = {}
        self._done: queue.Queue[JobDone] = queue.Queue()

    def capacity(self) -> int:
        """``jobs``."""
        return self.jobs

    def running(self) -> list[Job]:
        """Jobs started and not yet collected."""
        return [job for job, _, _ in self._running.values()]

    def start(self, job: Job) -> None:
        """Run ``job`` in a new thread."""
        cancel = threading.Event()
        ctx = dataclasses.replace(self.ctx, cancel=cancel)
        thread = threading.Thread(target=lambda: self._done.put(run_job(job, ctx)),
                                  name=f"hwsearch-trial-{job.number}-rung-{job.rung.rung}", daemon=True)
        self._running[job.number] = (job, cancel, thread)
        thread.start()

    def collect(self, timeout_s: float) -> list[JobDone]:
        """Jobs that ended, waiting up to ``timeout_s`` for the first."""
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
            self._running.pop(done.job.number, None)
        return finished

    def cancel(self, job: Job | None = None) -> None:
        """Ask ``job`` (or every running job) to stop at its next training step."""
        for number, (running, event, _) in self._running.items():
            if job is None or number == job.number:
                event.set()

    def shutdown(self, timeout_s: float) -> bool:
        """Cancel every job and wait for the threads to end (True when they all did)."""
        self.cancel()
        deadline = time.monotonic() + timeout_s
        for _, _, thread in list(self._running.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for _, _, t in self._running.values() if t.is_alive()]
        self._running.clear()
        return not alive
