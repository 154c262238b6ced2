"""A search keeps the budget to bring a candidate to the top rung, and ends with its best one there."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search import attrs
from search.executors.scheduler import Budget, Scheduler
from search.front import FrontSpec
from search.plan import CostModel
from search.promotion import RungEntry, decide
from spaces.registry import SampleContext, get_space
from tests.search.cheap import CheapSlots, cheap_driver


def make_scheduler(tmp_path: Path, remaining_s: float, rungs: tuple[int, ...] = (1, 3, 9)) -> Scheduler:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = get_space("esfair")
    task = space.task.with_settings(latency_budget_ms=1000.0)
    cost = CostModel(rate=0.0, images=100)
    cost.observe(macs=1e6, epochs=1, train_s=10.0, other_s=1.0, first_rung_extra_epochs=0)
    return Scheduler(
        study=optuna.create_study(directions=task.directions), space=space, overrides={}, context=SampleContext(),
        spec=FrontSpec.from_task(task), rungs=rungs,
        budget=Budget(total_s=1000.0, spent_before_s=0.0, cap=None, eta=3, max_epochs=9), cost=cost,
        deadline=time.monotonic() + remaining_s, study_dir=tmp_path,
    )


def test_no_new_candidate_starts_into_the_budget_a_climb_to_the_top_needs(tmp_path: Path) -> None:
    # a typical epoch is 10 s and a job's overhead 1 s: the climb from 1 to 9 epochs needs 8 x 10 + 2 x 1 s
    assert make_scheduler(tmp_path, 100.0).top_reserve_s() == pytest.approx(82.0)
    assert make_scheduler(tmp_path, 100.0).new_candidate_fits(), "11 s of first rung + 82 s of reserve fit in 100 s"
    assert not make_scheduler(tmp_path, 85.0).new_candidate_fits()
    assert make_scheduler(tmp_path, 85.0, rungs=(2,)).new_candidate_fits(), "a one-rung search keeps no reserve"


def test_the_reserve_is_released_once_a_candidate_is_sent_to_the_top(tmp_path: Path) -> None:
    scheduler = make_scheduler(tmp_path, 85.0, rungs=(1, 9))
    trial = scheduler.study.ask()
    first = scheduler.first_job(trial)
    scheduler._job(trial, first.candidate, 1, None, None)  # noqa: SLF001 - a top job that is not sent
    assert scheduler.top_reserve_s() > 0, "building a top-rung job that may be refused releases nothing"
    checkpoint = {"path": str(tmp_path / "rung_0.pt"), "sha256": "0" * 64, "rung": 0, "epochs": 1, "pruned": False}
    record = {"values": [0.5, 0.2, 1.0], "feasible": True, "checkpoint": checkpoint, "train_epochs": 1, "train_s": 5.0}
    verdict = scheduler.after_rung(first, record, 1e6, final=True)
    assert verdict.kind == "continue" and verdict.next_job.rung.final
    assert scheduler.top_reserve_s() == 0.0 and scheduler.new_candidate_fits()


def test_the_start_points_climb_does_not_release_the_reserve(tmp_path: Path) -> None:
    from search.study import enqueue_start_point

    scheduler = make_scheduler(tmp_path, 85.0, rungs=(1, 9))
    enqueue_start_point(scheduler.study, scheduler.space)
    checkpoint = {"path": str(tmp_path / "rung_0.pt"), "sha256": "0" * 64, "rung": 0, "epochs": 1, "pruned": False}
    record = {"values": [0.5, 0.2, 1.0], "feasible": True, "checkpoint": checkpoint, "train_epochs": 1, "train_s": 5.0}
    start = scheduler.study.ask()
    assert start.user_attrs[attrs.START_POINT]
    start.set_user_attr(attrs.rung_key(0), record)
    verdict = scheduler.after_rung(scheduler.first_job(start), record, 1e6, final=True)
    assert verdict.kind == "continue" and verdict.next_job.rung.final
    assert scheduler.top_reserve_s() > 0, "a front of the start point alone is what the reserve is there to avoid"
    other = scheduler.study.ask()
    other.set_user_attr(attrs.rung_key(0), record)
    verdict = scheduler.after_rung(scheduler.first_job(other), record, 1e6, final=True)
    assert verdict.kind == "continue" and verdict.next_job.rung.final
    assert scheduler.top_reserve_s() == 0.0, "a searched candidate started the top rung"


def test_a_final_decision_lets_the_best_of_fewer_than_eta_continue() -> None:
    spec = FrontSpec.from_task(get_space("esfair").task)
    entries = [RungEntry(0, (0.40, 0.2, 1.0), True), RungEntry(1, (0.60, 0.25, 1.0), True)]
    assert decide(0, entries, spec, 1, 3).wait, "not final: it waits for a third competitor"
    best, other = decide(1, entries, spec, 1, 3, final=True), decide(0, entries, spec, 1, 3, final=True)
    assert best.promote and best.quota == 1 and not other.promote and not other.wait
    infeasible = [RungEntry(0, (0.9, 0.3, 1.0), False), RungEntry(1, (0.2, 0.1, 1.0), True)]
    assert not decide(0, infeasible, spec, 1, 3, final=True).promote, "an infeasible one never continues"


def test_a_search_that_runs_out_of_candidates_still_brings_its_best_to_the_top(tmp_path: Path) -> None:
    from search.storage import open_storage

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="few", storage=storage, directions=get_space("esfair").task.directions,
                                sampler=optuna.samplers.RandomSampler(seed=3))
    # two candidates only (the cap): neither rung ever has three competitors
    cheap_driver(study, storage, url, tmp_path, cap=2, slots=CheapSlots(1), rungs=(1, 3, 9)).run()
    states = sorted(t.state for t in study.get_trials(deepcopy=False))
    assert states.count(TrialState.COMPLETE) == 1 and states.count(TrialState.PRUNED) == 1
    top = next(t for t in study.trials if t.state == TrialState.COMPLETE)
    assert sorted(attrs.rung_records(top.user_attrs)) == [0, 1, 2]
