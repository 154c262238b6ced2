"""The driver loop both backends share: claim, start, heartbeat, tell, call back.

Semantics follow ``study.optimize``: callbacks run after each finished trial and may call
``study.stop()`` (running trials then finish, no new one starts); a trial that fails, even before
it could start (e.g. its candidate cannot be sampled), is told FAIL with its reason and the loop
goes on; ``timeout_s`` stops starting new trials; an interrupt (Ctrl-C, or SIGTERM, e.g.
``docker stop``) fails the running trials with the reason ``interrupted`` and re-raises, so
re-running the command resumes.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from search import attrs
from search.executors.budget import TrialBudget
from search.objective import failure_reason
from search.storage import HEARTBEAT_INTERVAL_S

POLL_S = 2.0
"""Pause before asking again while other launchers' running trials hold the rest of the target."""

INTERRUPTED = "interrupted: the launcher was stopped before the trial finished"


@dataclass
class Finished:
    """A trial whose run is over.

    Attributes:
        trial: The Optuna trial (still RUNNING in the storage until the driver tells it).
        values: Objective values, or ``None`` when the trial failed.
        reason: Why it failed (stored as ``fail_reason``), when it failed.
    """

    trial: Any
    values: list[float] | None
    reason: str | None = None


class TrialSlots(Protocol):
    """Where trials run: threads of this process, or Ray tasks."""

    def capacity(self) -> int:
        """How many trials may run at once now."""

    def running(self) -> list[Any]:
        """The trials started and not yet collected."""

    def start(self, trial: Any) -> None:
        """Start running ``trial`` (a RUNNING Optuna trial)."""

    def collect(self, timeout_s: float) -> list[Finished]:
        """Trials that finished, waiting up to ``timeout_s`` for the first one."""

    def abandon(self) -> None:
        """Stop caring about the running trials (cancel them where possible)."""


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


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the main thread (a clean stop under ``docker stop``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tell(study: Any, done: Finished) -> Any:
    from optuna.trial import TrialState

    if done.values is None:
        if done.reason:
            done.trial.set_user_attr(attrs.FAIL_REASON, done.reason[:500])
        return study.tell(done.trial, state=TrialState.FAIL)
    return study.tell(done.trial, done.values)


def _finish(study: Any, done: Finished, callbacks: Sequence[Callable[[Any, Any], None]]) -> None:
    frozen = _tell(study, done)
    for callback in callbacks:
        callback(study, frozen)


def _fail_running(study: Any, slots: TrialSlots, reason: str) -> None:
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for trial in slots.running():
        try:
            trial.set_user_attr(attrs.FAIL_REASON, reason)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        except (UpdateFinishedTrialError, RuntimeError, ValueError):
            continue


def run_trials(
    study: Any, slots: TrialSlots, budget: TrialBudget, *,
    callbacks: Sequence[Callable[[Any, Any], None]] = (), timeout_s: float | None = None,
    heartbeat_s: float = HEARTBEAT_INTERVAL_S, poll_s: float = POLL_S,
) -> None:
    """Run trials in ``slots`` until the study reaches ``budget.target`` COMPLETE trials.

    Args:
        study: The Optuna study.
        slots: Where the trials run.
        budget: Claims trials (shared target across launchers) and records heartbeats.
        callbacks: ``callback(study, frozen_trial)`` after each finished trial.
        timeout_s: Stop starting new trials after this many seconds.
        heartbeat_s: Heartbeat interval of the running trials.
        poll_s: Pause while waiting for other launchers' trials.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with _optimize_loop(study), _sigterm_interrupts():
        try:
            while True:
                stopping = study._stop_flag or (deadline is not None and time.monotonic() >= deadline)  # noqa: SLF001
                while not stopping and len(slots.running()) < slots.capacity():
                    trial = budget.claim()
                    if trial is None:
                        break
                    try:
                        slots.start(trial)
                    except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails like any other
                        _finish(study, Finished(trial, None, failure_reason(exc)), callbacks)
                        break
                if not slots.running():
                    if stopping or budget.reached():
                        return
                    time.sleep(poll_s)
                    continue
                for done in slots.collect(heartbeat_s):
                    _finish(study, done, callbacks)
                for trial in slots.running():
                    budget.heartbeat(trial)
        except BaseException:
            _fail_running(study, slots, INTERRUPTED)
            slots.abandon()
            raise
