"""A first look: on a large training split the first rung trains a share of an epoch, fixed per study."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from search import attrs
from search.config import ConfigError
from search.executors.scheduler import Budget, Scheduler
from search.front import FrontSpec
from search.launch import study_first_look
from search.plan import CostModel
from spaces.registry import SampleContext, get_space


def config(first_look: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(first_look=first_look, eta=3, study="s")


def new_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(directions=get_space("esfair").task.directions)


def test_a_study_keeps_the_share_it_was_created_with() -> None:
    study = new_study()
    assert study_first_look(config(), study, None, 3500) == pytest.approx(1 / 3)
    assert study.user_attrs[attrs.STUDY_FIRST_LOOK] == pytest.approx(1 / 3)
    assert study_first_look(config(), study, None, 100) == pytest.approx(1 / 3), "a resumed study keeps its share"
    with pytest.raises(ConfigError, match="trains 1/3 of an epoch in its first rungs, not --first-look 1.*drop"):
        study_first_look(config(1.0), study, None, 3500)
    whole = new_study()
    study_first_look(config(), whole, None, 1200)
    with pytest.raises(ConfigError, match="trains whole epochs in its first rungs, not --first-look 0.5"):
        study_first_look(config(0.5), whole, None, 1200)


def test_small_data_one_rung_searches_and_older_studies_train_whole_epochs() -> None:
    assert study_first_look(config(), new_study(), None, 1200) == 1.0
    assert study_first_look(config(), new_study(), (2,), 5000) == 1.0, "in a one-rung search the first rung is the trial"
    with pytest.raises(ConfigError, match="needs a search in rungs"):
        study_first_look(config(0.5), new_study(), (2,), 5000)
    older = new_study()
    trial = older.ask()
    trial.set_user_attr(attrs.rung_key(0), {"epochs": 1})
    assert study_first_look(config(), older, None, 5000) == 1.0, "first rungs from before stay comparable"
    assert study_first_look(config(0.25), new_study(), None, 100) == 0.25, "--first-look overrides the rule"


def test_the_scheduler_sends_first_rungs_as_a_look_and_prices_the_climb_from_zero_epochs(tmp_path: Path) -> None:
    space = get_space("esfair")
    task = space.task.with_settings(latency_budget_ms=1000.0)
    cost = CostModel(rate=0.0, images=100)
    cost.observe(macs=1e6, epochs=1, train_s=10.0, other_s=1.0, first_rung_extra_epochs=0)
    scheduler = Scheduler(
        study=new_study(), space=space, overrides={"prune_ratio": 0.0}, context=SampleContext(),
        spec=FrontSpec.from_task(task), rungs=(1, 3, 9),
        budget=Budget(total_s=1000.0, spent_before_s=0.0, cap=None, eta=3, max_epochs=9), cost=cost,
        deadline=time.monotonic() + 1000.0, study_dir=tmp_path, first_look=1 / 3, first_rung_share=0.1,
    )
    job = scheduler.first_job(scheduler.study.ask())
    assert job.rung.epoch_share == pytest.approx(1 / 3) and job.rung.epochs_behind == 0
    assert job.estimate_s == pytest.approx(10.0 / 3 + 1.0), "a third of a 10 s epoch plus a job's overhead"
    assert job.rung.max_train_s == pytest.approx(100.0 / 3), "the limit bounds an epoch's cost, not the look's"
    assert scheduler.top_reserve_s() == pytest.approx(9 * 10.0 + 2 * 1.0), "all 9 epochs are still to train"
    checkpoint = {"path": str(tmp_path / "rung_0.pt"), "sha256": "0" * 64, "rung": 0, "epochs": 0, "pruned": False}
    record = {"values": [0.5, 0.2, 1.0], "feasible": True, "checkpoint": checkpoint, "train_epochs": 1 / 3,
              "train_s": 4.0}
    verdict = scheduler.after_rung(job, record, 1e6, final=True)
    assert verdict.kind == "continue" and verdict.next_job.rung.epoch_share == 1.0
    assert verdict.next_job.estimate_s == pytest.approx(12.0 * 3 + 1.0), "its own 12 s per epoch, 3 whole epochs"
