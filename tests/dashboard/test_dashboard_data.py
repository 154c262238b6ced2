"""Pure data shaping: study info from the task record, the trials frame, study summaries."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from dashboard.data import (
    half_width_column,
    latency_kind,
    projection_pairs,
    score_column,
    state_counts,
    trials_frame,
)
from dashboard.info import ObjectiveSpec, StudyInfo, study_info
from dashboard.pareto import FRONT_MEMBERS, FrontView, with_front
from dashboard.summary import studies_table, study_summary
from search import attrs
from search.front import FrontSpec

ESFAIR_NAMES = ["accuracy", "fairness", "latency_ms"]


def _info(names: list[str], directions: list[str]) -> StudyInfo:
    record = {"objectives": [{"name": n, "direction": d} for n, d in zip(names, directions)]}
    return StudyInfo("s", "", "", "", "", "", tuple(ObjectiveSpec(n, d) for n, d in zip(names, directions)),
                     FrontSpec.from_record(record))


def test_study_info_reads_the_task_record(demo, lpirc_demo) -> None:  # type: ignore[no-untyped-def]
    info = demo.info
    assert info.objective_names == ESFAIR_NAMES
    assert [o.metric for o in info.objectives] == ["accuracy", "fairness.fairness_part", "latency.median_ms"]
    assert [o.direction for o in info.objectives] == ["maximize", "maximize", "minimize"]
    assert info.scores == ("esfair",) and [d.label for d in info.details] == ["SPD", "worst group"]
    assert (info.space, info.device_tag, info.latency_backend) == ("esfair", "fake", "fake")
    assert info.latency_budget_ms == 6.0 and info.latency_objective == "latency_ms"
    assert info.floors == {"accuracy": 0.55}
    assert info.rungs == (1, 3, 9) and info.eta == 2 and info.spent_s == 412.5
    assert info.budget_s == 600.0 and "rungs 1 → 3 → 9" in info.plan
    assert info.needs_groups and len(info.test_metrics) >= 1
    assert info.spec.worst[2] == 6.0  # latency scales to the budget, as the CLI's FrontSpec does
    lpirc = lpirc_demo.info
    assert lpirc.objective_names == ["accuracy", "latency_ms"] and lpirc.scores == ("lpirc", "mnasnet")
    assert lpirc.details == () and not lpirc.needs_groups


def test_study_info_of_old_and_foreign_studies(legacy) -> None:  # type: ignore[no-untyped-def]
    info = legacy.info
    assert info.objective_names == ESFAIR_NAMES and info.scores == ("esfair",)  # completed from the space
    assert info.spec.best == (1.0, 1.0 / 3.0, 0.0) and info.rungs == () and info.plan == ""
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, directions=["minimize", "maximize"], study_name="plain")
    spaced = optuna.create_study(storage=storage, directions=["maximize"] * 2 + ["minimize"], study_name="spaced")
    spaced.set_user_attr(attrs.STUDY_SPACE, "esfair")
    by_name = {s.study_name: study_info(s) for s in storage.get_all_studies()}
    plain = by_name["plain"]
    assert plain.objective_names == ["objective_0", "objective_1"] and plain.scores == ()
    assert plain.latency_budget_ms is None and plain.latency_objective is None
    assert by_name["spaced"].objective_names == ESFAIR_NAMES and by_name["spaced"].latency_budget_ms == 6.0


def test_trials_frame_rules(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    seeded, frame, trials = seeded_db.demo, demo.frame.set_index("number"), demo.trials
    assert list(demo.frame["number"]) == list(range(len(trials))) and len(trials) == seeded.trials
    for number in seeded.screened_out:
        row = frame.loc[number]
        assert not row["feasible"] and not row["trained"] and row["state"] == "COMPLETE"
        assert math.isnan(row["accuracy"]) and math.isnan(row["fairness"])  # not the stored worst values
        assert row["latency_ms"] > 6.0 and "over the budget" in row["infeasible_reason"]
    for rung, numbers in seeded.stopped.items():
        for number in numbers:
            row, record = frame.loc[number], trials[number].user_attrs[attrs.rung_key(rung)]
            assert row["state"] == "PRUNED" and row["rung"] == rung and row["epochs"] == (1, 3, 9)[rung]
            assert [row[n] for n in ESFAIR_NAMES] == pytest.approx(record["values"])  # its last rung's values
            assert row["stopped"] == record["decision"]["reason"] and "continue" in row["stopped"]
    for number in seeded.complete:
        row, trial = frame.loc[number], trials[number]
        assert [row[n] for n in ESFAIR_NAMES] == pytest.approx(trial.values) and row["epochs"] == 9
        metrics = trial.user_attrs[attrs.METRICS]
        assert row[score_column("esfair")] == pytest.approx(metrics["scores"]["esfair"])
        assert row["SPD"] == pytest.approx(metrics["fairness"]["spd"])
        assert row["minority_accuracy"] == pytest.approx(metrics["per_group_accuracy"]["dark"])
        low, high = metrics["intervals"]["accuracy"]
        assert row[half_width_column("accuracy")] == pytest.approx((high - low) / 2)
        assert row[half_width_column("latency_ms")] == pytest.approx(row["latency_ms"] * 0.025)
        assert row["candidate"] == trial.user_attrs["candidate_text"]
    floor = frame.loc[seeded.floor_violator]
    assert floor["trained"] and not floor["feasible"] and "accuracy floor" in floor["infeasible_reason"]
    over = frame.loc[seeded.over_budget_final]
    assert over["trained"] and not over["feasible"] and "latency" in over["infeasible_reason"]
    measured = frame[frame["latency_source"] != ""]  # all but the trials that never reached their screen
    assert len(measured) == len(frame) - 2 and measured["fake_latency"].all()
    assert set(measured["latency_source"]) == {"fake"}
    assert measured["latency_label"].str.startswith("FAKE latency (not measured)").all()
    assert frame.loc[seeded.continuation, "continues"] == seeded.interrupted
    assert frame.loc[seeded.failed[-1], "fail_reason"].startswith("RuntimeError")
    assert frame.loc[seeded.baselines["esfair-winner-mobileone-s0"], "param.backbone"] == "mobileone_s0"
    assert set(frame["fairness_method"]) <= {"none", "balanced_sampler", "reweight", "groupdro"}


def test_lpirc_frame_has_its_own_columns(lpirc_demo) -> None:  # type: ignore[no-untyped-def]
    frame = lpirc_demo.frame
    assert {score_column("lpirc"), score_column("mnasnet"), half_width_column("accuracy")} <= set(frame.columns)
    assert not {score_column("esfair"), "SPD", "fairness"} & set(frame.columns)
    complete = frame[frame["state"] == "COMPLETE"]
    assert complete[score_column("mnasnet")].notna().all() and complete["minority_accuracy"].isna().all()


def test_legacy_layout(legacy) -> None:  # type: ignore[no-untyped-def]
    frame = legacy.frame.set_index("number")
    trained = frame[frame["trained"]]
    assert trained[score_column("esfair")].notna().all()  # esfair_score read as scores["esfair"]
    assert trained[half_width_column("accuracy")].isna().all()  # no intervals stored then
    assert set(trained["fairness_method"]) == {"none"}
    pruned = frame[frame["state"] == "PRUNED"]
    assert len(pruned) == 1 and math.isnan(pruned["rung"].iloc[0]) and pruned["latency_ms"].iloc[0] > 6.0


def test_candidate_attribute_wins_over_sampled_params() -> None:
    info = _info(["loss"], ["minimize"])
    trial = create_trial(value=0.5, params={"resolution": 96.0},
                         distributions={"resolution": FloatDistribution(32, 224)},
                         user_attrs={attrs.CANDIDATE: {"resolution": 32}})
    assert trials_frame([trial], info).loc[0, "param.resolution"] == 32


def test_summary_and_table(seeded_db, demo) -> None:  # type: ignore[no-untyped-def]
    seeded, info, frame = seeded_db.demo, demo.info, demo.frame
    counts = state_counts(frame)
    assert counts["FAIL"] == len(seeded.failed) and counts["RUNNING"] == len(seeded.running)
    assert counts["PRUNED"] == len(seeded.pruned) and counts["WAITING"] == 0
    row = study_summary(info, frame)
    assert row["latency"] == "FAKE" and row["space"] == "esfair" and row["device"] == "fake"
    assert row["infeasible"] == len(seeded.screened_out) + 2  # plus the floor violator and the final over budget
    members = frame[frame["front"].isin(FRONT_MEMBERS)]
    assert row["pareto"] == len(members) and row["within noise"] == int(members["dominated_by"].notna().sum())
    competing = frame[frame["number"].isin(demo.view.competing)]
    assert row["best accuracy"] == pytest.approx(competing["accuracy"].max())
    assert row["best latency_ms"] == pytest.approx(competing["latency_ms"].min())
    assert row["best esfair score"] == pytest.approx(competing[score_column("esfair")].max())
    assert row["rungs"] == "1 → 3 → 9 epochs, η = 2" and row["budget"] == "412 s of 600 s spent (69%)"
    older = dict(row, study="older", **{"last activity": pd.Timestamp("2020-01-01")})
    never = dict(row, study="never", **{"last activity": None})
    assert list(studies_table([older, never, row])["study"]) == ["esfair-demo", "older", "never"]


def test_latency_kind_names_what_is_not_measured() -> None:
    info = _info(["latency_ms"], ["minimize"])
    frame = pd.DataFrame({"latency_source": ["measured", "emulated"]})
    assert latency_kind(info, frame) == "EMULATED"
    assert latency_kind(info, frame.assign(latency_source=["predicted", "fake"])) == "FAKE"
    assert latency_kind(info, frame.assign(latency_source=["measured", "measured"])) == "unknown"


def test_trials_frame_of_empty_study() -> None:
    info = _info(ESFAIR_NAMES, ["maximize", "maximize", "minimize"])
    frame = with_front(trials_frame([], info), FrontView())
    assert frame.empty and {"accuracy", "front", "number", half_width_column("accuracy")} <= set(frame.columns)
    assert state_counts(frame)["COMPLETE"] == 0


def test_trials_without_hwsearch_attrs() -> None:
    info = _info(["loss"], ["minimize"])
    dist = {"x": FloatDistribution(0, 1)}
    trials = [create_trial(value=0.5, params={"x": 0.2}, distributions=dist),
              create_trial(value=0.1, params={"x": 0.9}, distributions=dist, user_attrs={"constraint": [0.3]})]
    trials[1].number = 1
    frame = trials_frame(trials, info)
    assert list(frame["feasible"]) == [True, False]
    assert list(frame["candidate"]) == ["x=0.2", "x=0.9"]


def test_projection_pairs() -> None:
    info = _info(ESFAIR_NAMES, ["maximize", "maximize", "minimize"])
    assert projection_pairs(info) == [("latency_ms", "accuracy"), ("latency_ms", "fairness"), ("fairness", "accuracy")]
