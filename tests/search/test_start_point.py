"""A new study trains its space's start point first and brings it to the top rung whatever its rank."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from search import attrs
from search.executors.scheduler import Budget, Scheduler
from search.front import FrontSpec
from search.plan import CostModel
from search.study import enqueue_start_point
from spaces import esfair, lpirc
from spaces.registry import SampleContext, get_space


def new_study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(directions=get_space("esfair").task.directions)


@pytest.mark.parametrize("module", [esfair, lpirc])
def test_every_built_in_start_point_is_a_cheap_plain_member_of_its_space(module: Any) -> None:
    space = get_space(module.__name__.split(".")[-1])
    name, candidate = space.start_point()
    assert name and candidate.backbone in module.BACKBONES and candidate.width in module.WIDTHS
    assert candidate.resolution in module.RESOLUTIONS and candidate.resolution <= 192
    assert candidate.prune_ratio == 0 and candidate.quant == "fp32" and candidate.loss.ce == 1.0
    sampled = space.sample(optuna.trial.FixedTrial(candidate.to_params()), SampleContext(grouped_data=True))
    assert sampled == candidate, "the space itself can sample it, so samplers learn from it like any trial"


def test_a_new_study_gets_the_start_point_first_and_a_resumed_one_does_not() -> None:
    study = new_study()
    assert enqueue_start_point(study, get_space("esfair")) == "mobilenetv3-small-192"
    trial = study.ask()
    assert trial.user_attrs[attrs.START_POINT] == "mobilenetv3-small-192"
    assert get_space("esfair").sample(trial, SampleContext()) == get_space("esfair").start_point()[1]
    assert enqueue_start_point(study, get_space("esfair")) is None, "a study with trials keeps its course"
    assert len(study.trials) == 1


def make_scheduler(study: optuna.Study, tmp_path: Path, *, rungs: tuple[int, ...] | None = (1, 3, 9),
                   budget_s: float = 1000.0, overhead_s: float = 1.0) -> Scheduler:
    space = get_space("esfair")
    task = space.task.with_settings(latency_budget_ms=1000.0)
    cost = CostModel(rate=0.0, images=100)
    cost.observe(macs=1e6, epochs=1, train_s=10.0, other_s=overhead_s, first_rung_extra_epochs=0)
    return Scheduler(
        study=study, space=space, overrides={}, context=SampleContext(), spec=FrontSpec.from_task(task),
        rungs=rungs, budget=Budget(total_s=budget_s, spent_before_s=0.0, cap=None, eta=3, max_epochs=9),
        cost=cost, deadline=time.monotonic() + budget_s, study_dir=tmp_path,
    )


def rung_record(tmp_path: Path, number: int, values: list[float], feasible: bool = True) -> dict[str, Any]:
    checkpoint = {"path": str(tmp_path / f"{number}.pt"), "sha256": "0" * 64, "rung": 0, "epochs": 1, "pruned": False}
    return {"values": values, "feasible": feasible, "checkpoint": checkpoint, "train_epochs": 1, "train_s": 5.0}


@pytest.mark.parametrize("start_point", [True, False])
def test_the_start_point_climbs_even_when_its_rank_would_stop_it(tmp_path: Path, start_point: bool) -> None:
    study = new_study()
    if start_point:
        enqueue_start_point(study, get_space("esfair"))
    scheduler = make_scheduler(study, tmp_path)
    worst = study.ask()
    job = scheduler.first_job(worst)
    # three better candidates at rung 0: one in four continues, and it is not the worst one
    for number, values in enumerate([[0.6, 0.3, 1.0], [0.5, 0.3, 0.9], [0.55, 0.32, 0.95]], start=1):
        other = study.ask()
        other.set_user_attr(attrs.rung_key(0), rung_record(tmp_path, number, values))
    record = rung_record(tmp_path, 0, [0.3, 0.1, 2.0])
    worst.set_user_attr(attrs.rung_key(0), record)
    verdict = scheduler.after_rung(job, record, 1e6)
    if start_point:
        assert verdict.kind == "continue" and "start point" in verdict.decision.reason
        assert verdict.next_job.rung.rung == 2 and verdict.next_job.rung.final, "straight to the top, 1 -> 9"
    else:
        assert verdict.kind == "stop" and "only the top 1 continue" in verdict.reason


@pytest.mark.parametrize("start_point", [True, False])
def test_a_start_point_ranked_first_takes_no_other_candidates_slot(tmp_path: Path, start_point: bool) -> None:
    study = new_study()
    if start_point:
        enqueue_start_point(study, get_space("esfair"))
    scheduler = make_scheduler(study, tmp_path)
    best = study.ask()
    best.set_user_attr(attrs.rung_key(0), rung_record(tmp_path, 0, [0.9, 0.33, 0.5]))
    jobs = {}
    for number, values in enumerate([[0.6, 0.3, 1.0], [0.5, 0.3, 0.9], [0.55, 0.32, 0.95]], start=1):
        other = study.ask()
        jobs[number] = (scheduler.first_job(other), rung_record(tmp_path, number, values))
        other.set_user_attr(attrs.rung_key(0), jobs[number][1])
    verdicts = {number: scheduler.after_rung(job, record, 1e6).kind for number, (job, record) in jobs.items()}
    if start_point:
        # the start point climbs anyway: the best of the other three still gets the one slot of three
        assert verdicts == {1: "continue", 2: "stop", 3: "stop"}
    else:
        # four plain candidates: the first one takes the one slot of four
        assert verdicts == {1: "stop", 2: "stop", 3: "stop"}


def test_the_start_point_waits_for_eta_competitors_like_any_candidate(tmp_path: Path) -> None:
    study = new_study()
    enqueue_start_point(study, get_space("esfair"))
    scheduler = make_scheduler(study, tmp_path)
    trial = study.ask()
    job = scheduler.first_job(trial)
    record = rung_record(tmp_path, 0, [0.3, 0.1, 2.0])
    trial.set_user_attr(attrs.rung_key(0), record)
    verdict = scheduler.after_rung(job, record, 1e6)
    assert verdict.kind == "wait", "climbing at once would make the first rungs, and the first results, wait"
    assert scheduler.after_rung(job, record, 1e6, final=True).kind == "continue"


@pytest.mark.parametrize("budget_s", [1000.0, 45.0])
def test_the_start_points_climb_waits_until_eta_others_have_finished_their_first_rung(
        tmp_path: Path, budget_s: float) -> None:
    study = new_study()
    enqueue_start_point(study, get_space("esfair"))
    scheduler = make_scheduler(study, tmp_path, budget_s=budget_s)
    trial = study.ask()
    job = scheduler.first_job(trial)
    record = rung_record(tmp_path, 0, [0.3, 0.1, 2.0])
    trial.set_user_attr(attrs.rung_key(0), record)
    for number, values in enumerate([[0.6, 0.3, 1.0], [0.5, 0.3, 0.9]], start=1):
        study.ask().set_user_attr(attrs.rung_key(0), rung_record(tmp_path, number, values))
    verdict = scheduler.after_rung(job, record, 1e6)
    if budget_s < 50:
        # its climb (8 epochs at its own 5 s + 1 s) and one more first rung (10 s + 1 s) do not both fit
        assert verdict.kind == "continue", "waiting would cost it the climb"
        return
    assert verdict.kind == "wait" and "first results" in verdict.reason, verdict
    study.ask().set_user_attr(attrs.rung_key(0), rung_record(tmp_path, 3, [0.55, 0.32, 0.95]))
    verdict = scheduler.after_rung(job, record, 1e6)
    assert verdict.kind == "continue" and verdict.next_job.rung.final


def test_an_infeasible_start_point_is_stopped_like_any_candidate(tmp_path: Path) -> None:
    study = new_study()
    enqueue_start_point(study, get_space("esfair"))
    scheduler = make_scheduler(study, tmp_path)
    trial = study.ask()
    job = scheduler.first_job(trial)
    record = rung_record(tmp_path, 0, [0.9, 0.3, 2000.0], feasible=False)
    trial.set_user_attr(attrs.rung_key(0), record)
    verdict = scheduler.after_rung(job, record, 1e6, final=True)
    assert verdict.kind == "stop" and "infeasible" in verdict.reason


def test_the_start_point_is_on_by_default_and_no_start_point_turns_it_off() -> None:
    from search.cli import build_parser
    from search.config import SearchConfig

    parser = build_parser()
    assert SearchConfig.from_args(parser.parse_args([]), environ={}).start_point
    assert not SearchConfig.from_args(parser.parse_args(["--no-start-point"]), environ={}).start_point


@pytest.mark.parametrize("start_point", [True, False])
def test_the_ladder_keeps_a_top_the_start_points_climb_affords(tmp_path: Path, start_point: bool) -> None:
    study = new_study()
    if start_point:
        enqueue_start_point(study, get_space("esfair"))
    for number in range(3):
        trial = study.ask()
        record = {**rung_record(tmp_path, number, [0.4, 0.3, 1.0]), "train_s": 10.0}
        trial.set_user_attr(attrs.rung_key(0), record)
    scheduler = make_scheduler(study, tmp_path, rungs=None, budget_s=250.0, overhead_s=5.0)
    assert scheduler.sure_climbers_epoch_s() == ([10.0] if start_point else [])
    plan = scheduler.choose_ladder()
    # 250 s at 10 s per epoch: two candidates reach 3 epochs, or the start point and one more reach 9
    assert plan.rungs == ((1, 9) if start_point else (1, 3))


def test_a_start_point_copied_into_a_continuation_or_infeasible_is_not_counted_twice(tmp_path: Path) -> None:
    study = new_study()
    enqueue_start_point(study, get_space("esfair"))
    first = study.ask()
    first.set_user_attr(attrs.rung_key(0), rung_record(tmp_path, 0, [0.4, 0.3, 1.0]))
    continuation = study.ask()
    continuation.set_user_attr(attrs.START_POINT, first.user_attrs[attrs.START_POINT])
    continuation.set_user_attr(attrs.rung_key(0), {**rung_record(tmp_path, 0, [0.4, 0.3, 1.0]), "copied_from": 0})
    scheduler = make_scheduler(study, tmp_path)
    assert scheduler.sure_climbers_epoch_s() == [5.0]
    first.set_user_attr(attrs.rung_key(0), rung_record(tmp_path, 0, [0.4, 0.3, 1.0], feasible=False))
    assert scheduler.sure_climbers_epoch_s() == []


def test_a_start_point_interrupted_on_its_climb_continues_straight_to_the_top(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    from search.study import enqueue_continuations

    study = new_study()
    enqueue_start_point(study, get_space("esfair"))
    first = study.ask()
    record = {**rung_record(tmp_path, 0, [0.4, 0.3, 1.0]), "decision": {"promote": True}}
    first.set_user_attr(attrs.rung_key(0), record)
    study.tell(first, state=TrialState.FAIL)
    assert enqueue_continuations(study, top_rung=2) == [0]
    scheduler = make_scheduler(study, tmp_path)
    job = scheduler.first_job(study.ask())
    assert job.rung.rung == 2 and job.rung.start is not None and job.rung.start.epochs == 1
    assert job.trial.user_attrs[attrs.START_POINT] == "mobilenetv3-small-192"
