"""The KD teacher is worth its cost only when it is trained long enough and beats the candidates."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import optuna

from search.context import TEACHER_MAX_EPOCHS, TEACHER_MIN_EPOCHS, teacher_epochs_for
from search.executors.scheduler import Budget, Scheduler
from search.front import FrontSpec
from search.plan import CostModel
from spaces.registry import SampleContext, get_space


def test_a_teacher_gets_the_epochs_its_share_affords_and_none_below_the_minimum() -> None:
    assert teacher_epochs_for(720.0, 38.0) == 0, "one epoch fits 10 % of 720 s: not worth a teacher"
    assert teacher_epochs_for(720.0, 72.0 / TEACHER_MIN_EPOCHS) == TEACHER_MIN_EPOCHS
    assert teacher_epochs_for(720.0, 17.0) == 4
    assert teacher_epochs_for(720.0, 1.0) == TEACHER_MAX_EPOCHS


def make_scheduler(tmp_path: Path, announced: list[str]) -> tuple[Scheduler, optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space("esfair")
    task = space.task.with_settings(latency_budget_ms=1000.0)
    study = optuna.create_study(directions=task.directions)
    cost = CostModel(rate=0.0, images=100)
    cost.observe(macs=1e6, epochs=1, train_s=0.01, other_s=1.0)
    scheduler = Scheduler(
        study=study, space=space, overrides={"loss_kd": 1.0}, context=SampleContext(), spec=FrontSpec.from_task(task),
        rungs=(1, 3), budget=Budget(total_s=1000.0, spent_before_s=0.0, cap=None, eta=3, max_epochs=9), cost=cost,
        deadline=time.monotonic() + 1000.0, study_dir=tmp_path, teacher_macs=lambda: 1e6, announce=announced.append,
    )
    return scheduler, study


def finished(accuracy: float, *, teacher_accuracy: float | None, kd_applied: bool) -> SimpleNamespace:
    """The parts of a rung outcome the scheduler learns from."""
    return SimpleNamespace(metrics=SimpleNamespace(accuracy=accuracy, macs=1e6), stage_seconds={"train": 1.0},
                           teacher_accuracy=teacher_accuracy, kd_applied=kd_applied)


def test_jobs_ask_the_teacher_to_beat_the_best_candidate_and_a_refused_teacher_turns_kd_off_once(tmp_path: Path) -> None:
    announced: list[str] = []
    scheduler, study = make_scheduler(tmp_path, announced)
    first = scheduler.first_job(study.ask())
    assert first.rung.teacher_min_accuracy == 0.0 and first.rung.teacher_epochs == 0, "rung 0 trains without it"
    scheduler.observe(first, finished(0.61, teacher_accuracy=None, kd_applied=False))
    assert scheduler.teacher_epochs() == TEACHER_MAX_EPOCHS
    promoted = scheduler._job(first.trial, first.candidate, 1, None, 1e6)
    assert promoted.rung.teacher_epochs == TEACHER_MAX_EPOCHS and promoted.rung.teacher_min_accuracy == 0.61
    scheduler.observe(promoted, finished(0.64, teacher_accuracy=0.55, kd_applied=False))
    scheduler.observe(promoted, finished(0.66, teacher_accuracy=0.55, kd_applied=False))
    refusals = [line for line in announced if "not above the best candidate" in line]
    assert len(refusals) == 1 and "0.550" in refusals[0] and "off for the rest of this search" in refusals[0]
    assert scheduler.teacher_epochs() == 0
    assert scheduler._job(first.trial, first.candidate, 1, None, 1e6).rung.teacher_epochs == 0


def test_a_resumed_search_remembers_the_best_accuracy_of_its_stored_rungs(tmp_path: Path) -> None:
    scheduler, study = make_scheduler(tmp_path, [])
    trial = study.ask()
    trial.set_user_attr("rung.0", {"figures": {"accuracy": 0.7}, "values": [0.7, 0.3, 1.0]})
    again = Scheduler(study=study, space=scheduler.space, overrides={}, context=SampleContext(), spec=scheduler.spec,
                      rungs=(1, 3), budget=scheduler.budget, cost=scheduler.cost, deadline=scheduler.deadline,
                      study_dir=tmp_path)
    assert again.first_job(study.ask()).rung.teacher_min_accuracy == 0.7
