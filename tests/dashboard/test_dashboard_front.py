"""One front, one hypervolume: the dashboard's marks agree with the CLI's report and export picks."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from dashboard_checks import assert_same_front_as_the_cli
from optuna.trial import create_trial

from dashboard.data import trials_frame
from dashboard.info import ObjectiveSpec, StudyInfo
from dashboard.pareto import (
    FRONT_DOMINATED,
    FRONT_INFEASIBLE,
    FRONT_MEMBERS,
    FRONT_NOISE,
    FRONT_OTHER,
    FRONT_PARETO,
    FRONT_STOPPED,
    current_hypervolume,
    front_view,
    hypervolume_frame,
    with_front,
)
from search import attrs
from search.front import FrontSpec


def test_demo_front_matches_the_cli(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    assert_same_front_as_the_cli(seeded_db.url, "esfair-demo", demo)
    noisy = demo.frame.set_index("number").loc[seeded_db.demo.noise_member]
    assert noisy["front"] == FRONT_NOISE and pd.notna(noisy["dominated_by"])


def test_lpirc_front_matches_the_cli(seeded_db, lpirc_demo) -> None:  # type: ignore[no-untyped-def]
    assert_same_front_as_the_cli(seeded_db.url, "lpirc-demo", lpirc_demo)


def test_marks(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    seeded, marks = seeded_db.demo, demo.frame.set_index("number")["front"]
    assert {marks[n] for n in seeded.failed + seeded.running} == {FRONT_OTHER}
    assert {marks[n] for n in seeded.pruned} == {FRONT_STOPPED}
    infeasible = seeded.screened_out + [seeded.floor_violator, seeded.over_budget_final]
    assert {marks[n] for n in infeasible} == {FRONT_INFEASIBLE}
    competing = set(seeded.complete) - {seeded.floor_violator, seeded.over_budget_final}
    assert set(marks[marks.isin([*FRONT_MEMBERS, FRONT_DOMINATED])].index) == competing


def test_stopped_trials_never_compete_even_when_better() -> None:
    info = StudyInfo("s", "", "", "", "", "", (ObjectiveSpec("accuracy", "maximize", "accuracy"),
                                               ObjectiveSpec("latency_ms", "minimize", "latency.median_ms")),
                     FrontSpec.from_record({"objectives": [{"name": "accuracy", "direction": "maximize"},
                                                           {"name": "latency_ms", "direction": "minimize"}]}))
    good = {attrs.TRAINED: True, attrs.FEASIBLE: True}
    trials = [
        create_trial(values=[0.8, 2.0], user_attrs=good),
        create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
            attrs.TRAINED: True, attrs.FEASIBLE: False, attrs.RUNG: 0, attrs.STOPPED: "rung 0: 2 of 2",
            attrs.rung_key(0): {"rung": 0, "epochs": 1, "values": [0.99, 0.1]}}),
        create_trial(values=[0.99, 0.1], user_attrs={attrs.TRAINED: True, attrs.FEASIBLE: False}),
        create_trial(values=[0.7, 3.0], user_attrs=good),
    ]
    for number, trial in enumerate(trials):
        trial.number = number
    marked = with_front(trials_frame(trials, info), front_view(trials, info))
    assert list(marked["front"]) == [FRONT_PARETO, FRONT_STOPPED, FRONT_INFEASIBLE, FRONT_DOMINATED]
    assert marked.loc[1, "accuracy"] == 0.99  # drawn at its rung's figures, never on the front


def test_hypervolume_history(demo) -> None:  # type: ignore[no-untyped-def]
    history = hypervolume_frame(demo.view, demo.info)
    assert list(history["number"]) == sorted(demo.view.competing)
    values = history["hypervolume"].to_numpy()
    assert (values[1:] >= values[:-1] - 1e-12).all() and 0 < values[-1] <= 1
    assert values[-1] == pytest.approx(current_hypervolume(demo.view, demo.info))
    assert hypervolume_frame(front_view([], demo.info), demo.info).empty
