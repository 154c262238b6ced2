"""The driver loop every executor shares: claim trials, dispatch rung jobs, store outcomes, promote,
keep heartbeats, and stop cleanly.

Only this loop (one thread) writes to the study. Each trial it asks is entered into ``owned``
inside the claim, and leaves it only when the trial is told; so whatever stops the search, its
one stop path (:meth:`Driver._stop`) knows every trial this launcher created and has not told
(asked but not yet dispatched, dispatched, running) and marks each FAIL with ``fail_reason``
"interrupted: ...", after asking the running jobs to stop and before shutting the workers down.
Signals only set a flag (:mod:`search.stop`) that the loop checks between steps.

Semantics: after each told trial the callbacks run (``callback(study, frozen_trial)``, as in
``study.optimize``) and may call ``study.stop()`` (no new trial starts, running ones finish); a
trial that cannot start fails with its reason and the loop goes on; no job starts that the budget
cannot fit; past the budget's grace the running jobs are stopped (a trial with a finished rung is
PRUNED with that rung's figures, one without is FAIL).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from search import attrs
from search.executors.budget import TrialBudget
from search.executors.jobs import Job, JobDone, JobSlots
from search.executors.scheduler import Scheduler
from search.records import (
    failure_reason,
    record_complete,
    record_decision,
    record_failure,
    record_rung,
    record_screened_out,
    record_stopped,
    rung_record,
)
from search.stop import SearchStopped, StopSignal
from search.storage import HEARTBEAT_INTERVAL_S
from spaces.task import Task

POLL_S = 0.25
"""Longest wait between checks of the stop flag, the budget and finished jobs."""
WAIT_FOR_OTHERS_S = 2.0
"""Pause before asking again while other launchers' running trials hold the rest of the cap."""
ENV_DISPATCH_DELAY = "HWSEARCH_DEBUG_DISPATCH_DELAY_S"
"""Seconds to wait between asking a trial and dispatching it (for tests of the stop path)."""
SHUTDOWN_WAIT_S = 30.0


@contextmanager
def _optimize_loop(study: Any) -> Iterator[None]:
    """Let callbacks call ``study.stop()`` as inside ``study.optimize`` (same private flags)."""
    local = study._thread_local  # noqa: SLF001 - the flag study.stop() checks
    previous = local.in_optimize_loop
    local.in_optimize_loop = True
    study._stop_flag = False  # noqa: SLF001
    try:
        yield
    finally:
        local.in_optimize_loop = previous


class SpentClock:
    """The study's spent budget: what earlier runs spent plus this run's elapsed seconds.

    Args:
        study: The study.
        started: ``time.monotonic()`` when this run's search began (its planning included).
    """

    def __init__(self, study: Any, started: float | None = None) -> None:
        self.study = study
        self.before = float(study.user_attrs.get(attrs.STUDY_SPENT_S, 0.0))
        self.started = time.monotonic() if started is None else started

    def elapsed(self) -> float:
        """Seconds since this run's search started."""
        return time.monotonic() - self.started

    def store(self) -> None:
        """Write the spent total to the study (never lowering another launcher's figure)."""
        current = float(self.study.user_attrs.get(attrs.STUDY_SPENT_S, 0.0))
        self.study.set_user_attr(attrs.STUDY_SPENT_S, max(current, self.before + self.elapsed()))


class Driver:
    """Runs a search's rung jobs in ``slots`` until the budget or the cap is spent.

    Args:
        study: The Optuna study.
        claims: Hands out new trials (the shared ``--trials`` cap) and records heartbeats.
        slots: Where jobs run.
        scheduler: First jobs, promotions and budget checks.
        task: The effective task (objectives, constraints).
        callbacks: ``callback(study, frozen_trial)`` after each told trial.
        stop: The stop flag (signals).
        on_tick: Called every loop with the driver (progress display).
        on_rung: Called after every finished rung with the job, its rung record and the verdict's
            kind and reason (progress display, logs).
        grace_s: How long past the deadline running jobs may take before they are stopped.
        started: ``time.monotonic()`` when this run's search began (default: now).
        on_plan: Called with the plan once the rung ladder is chosen (after the driver stored it).
    """

    def __init__(
        self, *, study: Any, claims: TrialBudget, slots: JobSlots, scheduler: Scheduler, task: Task,
        callbacks: Sequence[Callable[[Any, Any], None]] = (), stop: StopSignal | None = None,
        on_tick: Callable[["Driver"], None] | None = None,
        on_rung: Callable[[Job, dict[str, Any], str, str], None] | None = None, grace_s: float = 60.0,
        started: float | None = None, on_plan: Callable[[Any], None] | None = None,
    ) -> None:
        self.study = study
        self.claims = claims
        self.slots = slots
        self.scheduler = scheduler
        self.task = task
        self.callbacks = list(callbacks)
        self.stop = stop or StopSignal()
        self.on_tick = on_tick
        self.on_rung = on_rung
        self.grace_s = grace_s
        self.owned: dict[int, Any] = {}
        self.pending: list[Job] = []
        self.waiting: dict[int, tuple[Job, dict[str, Any], float]] = {}
        self.spent = SpentClock(study, started)
        self.rung_counts: dict[int, int] = {}
        self.dispatch_delay_s = float(os.environ.get(ENV_DISPATCH_DELAY) or 0.0)
        self._on_plan = on_plan
        scheduler.on_plan = self._store_plan
        self._last_heartbeat = 0.0
        self._hard_stopped = False

    def run(self) -> None:
        """Run until done.

        Raises:
            SearchStopped: A signal stopped the search (after the stop path ran); its ``exit_code``
                is 128 + the signal number.
        """
        self.rung_counts = self._count_rungs()
        with _optimize_loop(self.study), self.stop.installed():
            try:
                self._loop()
            except BaseException as exc:
                reason = self.stop.reason if self.stop.requested else f"interrupted: {failure_reason(exc)}"
                self._stop_path(reason)
                if isinstance(exc, KeyboardInterrupt):
                    raise SearchStopped(reason, self.stop.exit_code) from None
                raise
            if self.stop.requested:
                self._stop_path(self.stop.reason)
                raise SearchStopped(self.stop.reason, self.stop.exit_code)
        self.spent.store()

    def _loop(self) -> None:
        while not self.stop.requested:
            for done in self.slots.collect(POLL_S):
                self._finish(done)
                if self.stop.requested:
                    return
            starting = self._fill()
            self._keep_alive()
            if self.on_tick is not None:
                self.on_tick(self)
            if not self.slots.running() and not self.pending:
                if self.waiting and starting != "go":
                    self._decide_waiting(final=True)
                elif starting == "wait":
                    self.stop.wait(WAIT_FOR_OTHERS_S)
                elif not starting:
                    return

    def _can_start(self) -> bool:
        return (not self.study._stop_flag and not self.claims.reached()  # noqa: SLF001
                and self.scheduler.new_candidate_fits())

    def _fill(self) -> str:
        """Start promoted rungs, then new trials, in free slots.

        Returns:
            ``""`` (no new trial can start), ``"wait"`` (other launchers hold the rest of the cap)
            or ``"go"``.
        """
        while self.pending and len(self.slots.running()) < self.slots.capacity():
            job = self.pending.pop(0)
            self._start(job.trial, lambda trial, job=job: job)
        while len(self.slots.running()) < self.slots.capacity():
            if not self._can_start():
                return ""
            trial = self.claims.claim(self.owned)
            if trial is None:
                return "wait"
            if self.dispatch_delay_s:
                time.sleep(self.dispatch_delay_s)
            if self.stop.requested:
                return ""
            self._start(trial, self.scheduler.first_job)
        return "go"

    def _start(self, trial: Any, make_job: Callable[[Any], Job]) -> None:
        """Dispatch ``make_job(trial)``; a job that cannot start fails its trial with the reason."""
        try:
            self.slots.start(make_job(trial))
        except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails like any other
            record_failure(trial, failure_reason(exc), self.scheduler.study_dir / f"trial_{trial.number}",
                           traceback.format_exc())
            self._tell(trial, None, failed=True)

    def _keep_alive(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL_S:
            for job in [*self.slots.running(), *self.pending, *(job for job, _, _ in self.waiting.values())]:
                self.claims.heartbeat(job.trial)
            self._last_heartbeat = now
        if not self._hard_stopped and self.scheduler.remaining_s() < -self.grace_s and self.slots.running():
            self._hard_stopped = True
            self.slots.cancel()

    def _finish(self, done: JobDone) -> None:
        job, trial = done.job, done.job.trial
        if done.worker:
            trial.set_user_attr(attrs.WORKER, done.worker)
        if done.cancelled:
            self._budget_stop(job)
            return
        if done.outcome is None:
            record_failure(trial, done.reason or "the job failed without a reason", None, None)
            self._tell(trial, None, failed=True)
            return
        outcome = done.outcome
        if outcome.metrics is None:
            self.scheduler.observe_untrained(outcome)
            values = record_screened_out(trial, outcome, self.task)
            self._tell(trial, values)
            return
        record = rung_record(outcome, self.task, resumed_from=job.resumed_from)
        record_rung(trial, outcome, self.task, record)
        self.scheduler.observe(job, outcome)
        self.rung_counts[job.rung.rung] = self.rung_counts.get(job.rung.rung, 0) + 1
        self._decide_waiting(final=False, rung=job.rung.rung)
        self._apply(job, record, outcome.metrics.macs, final=False)

    def _apply(self, job: Job, record: dict[str, Any], macs: float, *, final: bool) -> None:
        """Act on the verdict after ``job``'s rung: tell, promote, park or stop the trial."""
        trial = job.trial
        verdict = self.scheduler.after_rung(job, record, macs, final=final)
        if self.on_rung is not None:
            self.on_rung(job, record, verdict.kind, verdict.reason)
        if verdict.kind == "complete":
            self._tell(trial, record_complete(trial, self.task))
            return
        if verdict.decision is not None:
            record_decision(trial, verdict.decision)
        if verdict.kind == "wait":
            self.waiting[job.number] = (job, record, macs)
        elif verdict.kind == "continue":
            self.pending.append(verdict.next_job)
        else:
            record_stopped(trial, verdict.reason or "stopped")
            self._tell(trial, None, pruned=True)

    def _decide_waiting(self, *, final: bool, rung: int | None = None) -> None:
        """Decide the parked trials (of ``rung``, or all) now that more candidates finished their rung.

        ``final`` when no more candidates will come from this launcher (the budget or the cap is
        spent; the parked trials themselves hold places of the cap): decide with what there is.
        """
        for number, (job, record, macs) in sorted(self.waiting.items()):
            if rung is None or job.rung.rung == rung:
                del self.waiting[number]
                self._apply(job, record, macs, final=final)

    def _budget_stop(self, job: Job) -> None:
        trial = job.trial
        if trial.user_attrs.get(attrs.RUNG) is not None:
            record_stopped(trial, f"stopped during rung {job.rung.rung}: the search budget ran out")
            self._tell(trial, None, pruned=True)
        else:
            record_failure(trial, "stopped: the search budget ran out before its first rung finished")
            self._tell(trial, None, failed=True)

    def _tell(self, trial: Any, values: list[float] | None, *, failed: bool = False, pruned: bool = False) -> None:
        from optuna.trial import TrialState

        if failed:
            frozen = self.study.tell(trial, state=TrialState.FAIL)
        elif pruned:
            frozen = self.study.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = self.study.tell(trial, values)
        self.owned.pop(trial.number, None)
        self.spent.store()
        for callback in self.callbacks:
            callback(self.study, frozen)

    def _stop_path(self, reason: str) -> None:
        """Stop asking, stop the jobs, fail every owned trial, then shut the workers down."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        self.slots.cancel()
        for number, trial in list(self.owned.items()):
            try:
                trial.set_user_attr(attrs.FAIL_REASON, reason[:500])
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            except (UpdateFinishedTrialError, RuntimeError, ValueError):
                pass
            self.owned.pop(number, None)
        self.slots.shutdown(SHUTDOWN_WAIT_S)
        self.spent.store()

    def _store_plan(self, plan: Any) -> None:
        """Store the chosen ladder on the study (once: a study's rungs never change) and the plan's text."""
        if self.study.user_attrs.get(attrs.STUDY_RUNGS) is None:
            self.study.set_user_attr(attrs.STUDY_RUNGS, list(plan.rungs))
            self.study.set_user_attr(attrs.STUDY_ETA, plan.eta)
        self.study.set_user_attr(attrs.STUDY_PLAN, plan.describe())
        if self._on_plan is not None:
            self._on_plan(plan)

    def _count_rungs(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            for rung, record in attrs.rung_records(t.user_attrs).items():
                if record.get("copied_from") is None:
                    counts[rung] = counts.get(rung, 0) + 1
        return counts

    def running_by_rung(self) -> dict[int, int]:
        """Jobs running now, by rung."""
        out: dict[int, int] = {}
        for job in self.slots.running():
            out[job.rung.rung] = out.get(job.rung.rung, 0) + 1
        return out

