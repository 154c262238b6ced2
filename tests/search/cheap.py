"""Cheap rung jobs for driver tests: real driver, scheduler, study and promotion, synthetic figures.

:class:`CheapSlots` runs each job in a thread like the local backend, but instead of training it
returns a :class:`evaluators.pipeline.RungOutcome` whose figures are a deterministic function of
the candidate and the rung (more epochs, better accuracy), so promotion decisions can be checked.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from evaluators.contracts import FairnessFigures, LatencyResult, Metrics
from evaluators.pipeline import Checkpoint, RungOutcome, ScreenResult
from search.executors.budget import StudyLock, TrialBudget
from search.executors.driver import Driver
from search.executors.jobs import Job, JobDone
from search.executors.scheduler import Budget, Scheduler
from search.front import FrontSpec
from search.plan import CostModel
from search.stop import StopSignal
from spaces.registry import SampleContext, get_space


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def cheap_outcome(job: Job) -> RungOutcome:
    """Figures of ``job``: accuracy grows with the rung; latency and fairness depend on the candidate."""
    candidate = job.candidate
    quality = _unit(candidate.describe())
    latency = LatencyResult(median_ms=0.1 + candidate.resolution * candidate.width / 100.0, p90_ms=1.0, mean_ms=1.0,
                            std_ms=0.0, min_ms=0.05, n=10, device="FAKE cheap", device_tag="fake", threads=1,
                            backend="fake", fake=True, source="fake")
    screen = ScreenResult("fp-" + candidate.describe(), latency, 1000, 1000, 1000, {}, 0.0) if job.rung.screen else None
    accuracy = min(1.0, 0.3 + 0.5 * quality + 0.05 * job.rung.epochs)
    fairness = FairnessFigures("a", 0.1 * _unit(candidate.describe() + "f"), 0.3, accuracy, 0.0, 0.0)
    fairness.fairness_part = (0.2 - min(0.2, fairness.spd)) / 0.2 / 3
    metrics = Metrics(
        accuracy=accuracy, per_group_accuracy={"a": accuracy}, group_counts={"a": 10}, fairness=fairness,
        scores={"esfair": accuracy}, confusion_matrix=[[1]], class_names=["x"], latency=latency, size_bytes=1000,
        params=1000, macs=1000, artifact_path=str(job.trial_dir / "model.onnx"), artifact_sha256="0" * 64,
        fingerprint="fp", epochs=job.rung.epochs,
    )
    path = job.trial_dir / f"rung_{job.rung.rung}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"cheap checkpoint")
    checkpoint = Checkpoint(str(path), "1" * 64, job.rung.rung, job.rung.epochs, False)
    return RungOutcome(job.rung, screen, metrics, checkpoint, {"train": 0.01}, [], False, True)


class CheapSlots:
    """Runs ``outcome(job)`` for up to ``jobs`` jobs at once in threads, after ``delay_s``."""

    def __init__(self, jobs: int = 2, *, delay_s: float = 0.01, fail: Callable[[Job], bool] | None = None,
                 started: Callable[[Job], None] | None = None,
                 outcome: Callable[[Job], RungOutcome] = cheap_outcome) -> None:
        self.jobs = jobs
        self.outcome = outcome
        self.delay_s = delay_s
        self.fail = fail
        self.on_start = started
        self._running: dict[int, Job] = {}
        self._cancel: dict[int, threading.Event] = {}
        self._done: queue.Queue[JobDone] = queue.Queue()

    def capacity(self) -> int:
        return self.jobs

    def running(self) -> list[Job]:
        return list(self._running.values())

    def start(self, job: Job) -> None:
        if self.on_start is not None:
            self.on_start(job)
        event = threading.Event()
        self._running[job.number] = job
        self._cancel[job.number] = event

        def work() -> None:
            if event.wait(self.delay_s):
                self._done.put(JobDone(job, cancelled=True))
            elif self.fail is not None and self.fail(job):
                self._done.put(JobDone(job, reason="RuntimeError: planned failure"))
            else:
                self._done.put(JobDone(job, outcome=self.outcome(job), worker={"host": "h", "pid": 1}))

        threading.Thread(target=work, daemon=True).start()

    def collect(self, timeout_s: float) -> list[JobDone]:
        try:
            finished = [self._done.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while not self._done.empty():
            finished.append(self._done.get_nowait())
        for done in finished:
            self._running.pop(done.job.number, None)
        return finished

    def cancel(self, job: Job | None = None) -> None:
        for number, event in self._cancel.items():
            if job is None or number == job.number:
                event.set()

    def shutdown(self, timeout_s: float) -> bool:
        self.cancel()
        self._running.clear()
        return True


def cheap_driver(
    study: Any, storage: Any, url: str, out: Path, *, cap: int | None, slots: Any, rungs: Sequence[int] = (1,),
    eta: int = 3, budget_s: float = 120.0, callbacks: Sequence[Any] = (), stop: StopSignal | None = None,
    first_rung_share: float = 0.0,
) -> Driver:
    """A real driver on ``study`` with the esfair space, cheap slots and a generous budget."""
    space = get_space("esfair")
    task = space.task.with_settings(latency_budget_ms=1000.0)
    scheduler = Scheduler(
        study=study, space=space, overrides={}, context=SampleContext(), spec=FrontSpec.from_task(task),
        rungs=tuple(rungs), budget=Budget(total_s=budget_s, spent_before_s=0.0, cap=cap, eta=eta, max_epochs=9),
        cost=CostModel(rate=0.0, images=10, overhead_s=0.0), deadline=time.monotonic() + budget_s, study_dir=out,
        first_rung_share=first_rung_share,
    )
    claims = TrialBudget(study, storage, StudyLock(url, study.study_name), cap)
    return Driver(study=study, claims=claims, slots=slots, scheduler=scheduler, task=task, callbacks=callbacks,
                  stop=stop)
