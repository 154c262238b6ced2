"""Pure data shaping: study info, trials frame, summaries, dominance, hypervolume, trial details."""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from dashboard import detail
from dashboard.data import (
    ObjectiveSpec,
    StudyInfo,
    projection_pairs,
    state_counts,
    studies_table,
    study_info,
    study_summary,
    trials_frame,
)
from dashboard.pareto import (
    FRONT_DOMINATED,
    FRONT_INFEASIBLE,
    FRONT_OTHER,
    FRONT_PARETO,
    REFERENCE_MARGIN,
    hypervolume,
    hypervolume_history,
    non_dominated,
    pareto_numbers,
    with_front,
)

ESFAIR_NAMES = ["accuracy", "fairness", "latency_ms"]


def _info(names: list[str], directions: list[str]) -> StudyInfo:
    return StudyInfo("s", "", "", "", "", "", tuple(ObjectiveSpec(n, d) for n, d in zip(names, directions)))


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"state": "COMPLETE", "feasible": True, "trained": True, "baseline": "", "fake_latency": False}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_study_info_reads_hwsearch_attrs(loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, _ = loaded
    assert info.objective_names == ESFAIR_NAMES
    assert [o.direction for o in info.objectives] == ["maximize", "maximize", "minimize"]
    assert (info.space, info.device_tag, info.latency_backend) == ("esfair", "fake", "fake")
    assert info.latency_budget_ms == 6.0 and info.latency_objective == "latency_ms"
    assert len(info.test_metrics) == 1


def test_study_info_falls_back_without_attrs() -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, directions=["minimize", "maximize"], study_name="plain")
    spaced = optuna.create_study(storage=storage, directions=["maximize"] * 2 + ["minimize"], study_name="spaced")
    spaced.set_user_attr("hwsearch.space", "esfair")
    by_name = {s.study_name: study_info(s) for s in storage.get_all_studies()}
    assert by_name["plain"].objective_names == ["objective_0", "objective_1"]
    assert by_name["plain"].latency_budget_ms is None and by_name["plain"].latency_objective is None
    assert by_name["spaced"].objective_names == ESFAIR_NAMES
    assert by_name["spaced"].latency_budget_ms == 6.0


def test_trials_frame_rules(seeded_db, loaded) -> None:  # type: ignore[no-untyped-def]
    info, trials, frame = loaded
    demo = seeded_db.demo
    assert list(frame["number"]) == list(range(len(trials)))
    by_number = frame.set_index("number")
    for number in demo.infeasible:
        row = by_number.loc[number]
        assert not row["feasible"] and not row["trained"]
        assert math.isnan(row["accuracy"]) and math.isnan(row["fairness"])
        assert row["latency_ms"] > info.latency_budget_ms
        assert "budget" in row["infeasible_reason"]
    over = by_number.loc[demo.trained_infeasible[0]]
    assert over["trained"] and not over["feasible"] and over["accuracy"] > 0
    assert over["latency_ms"] > info.latency_budget_ms and "final artifact" in over["infeasible_reason"]
    pruned = by_number.loc[demo.infeasible[-1]]
    assert pruned["state"] == "PRUNED" and pruned["latency_ms"] > 0
    for number in demo.feasible:
        trial = trials[number]
        assert by_number.loc[number, "accuracy"] == pytest.approx(trial.values[0])
        assert by_number.loc[number, "candidate"] == trial.user_attrs["candidate_text"]
    assert frame["fake_latency"].all()
    assert by_number.loc[demo.failed[0], "fail_reason"].startswith("RuntimeError")
    assert by_number.loc[demo.baselines["esfair-winner-mobileone-s0"], "param.backbone"] == "mobileone_s0"
    assert by_number.loc[0, "param.epochs"] == 2  # from the candidate attribute, not a searched param


def test_front_marks(seeded_db, loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, frame = loaded
    demo = seeded_db.demo
    marks = frame.set_index("number")["front"]
    assert {marks[n] for n in demo.failed + demo.running} == {FRONT_OTHER}
    assert {marks[n] for n in demo.infeasible[:-1] + demo.trained_infeasible} == {FRONT_INFEASIBLE}
    feasible = frame[frame["number"].isin(demo.feasible)]
    losses = np.stack([-feasible["accuracy"], -feasible["fairness"], feasible["latency_ms"]], axis=1)
    expected = set(feasible["number"][non_dominated(losses)])
    assert set(pareto_numbers(frame, info)) == expected
    assert set(marks[marks == FRONT_DOMINATED].index) == set(demo.feasible) - expected


def test_non_dominated_small_cases() -> None:
    losses = np.array([[1.0, 1.0], [2.0, 0.5], [2.0, 2.0], [1.0, 1.0], [0.5, 3.0], [3.0, 3.0]])
    assert non_dominated(losses).tolist() == [True, True, False, True, True, False]
    assert non_dominated(np.zeros((0, 3))).tolist() == []
    assert non_dominated(np.array([[5.0, 5.0, 5.0]])).tolist() == [True]


def test_infeasible_never_on_front_even_when_better() -> None:
    info = _info(["accuracy", "latency_ms"], ["maximize", "minimize"])
    frame = _frame([
        {"number": 0, "accuracy": 0.8, "latency_ms": 2.0},
        {"number": 1, "accuracy": 0.99, "latency_ms": 0.1, "feasible": False},
        {"number": 2, "accuracy": 0.7, "latency_ms": 3.0},
        {"number": 3, "accuracy": math.nan, "latency_ms": 1.0, "state": "FAIL"},
    ])
    marked = with_front(frame, info)
    assert list(marked["front"]) == [FRONT_PARETO, FRONT_INFEASIBLE, FRONT_DOMINATED, FRONT_OTHER]


def _union_volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact volume of the union of boxes [p, reference] by coordinate compression (brute force)."""
    axes = [np.unique(np.append(points[:, d], reference[d])) for d in range(points.shape[1])]
    volume = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        low = np.array([axes[d][i] for d, i in enumerate(cell)])
        high = np.array([axes[d][i + 1] for d, i in enumerate(cell)])
        if ((points <= low).all(axis=1)).any():
            volume += float(np.prod(high - low))
    return volume


def test_hypervolume_matches_brute_force() -> None:
    two = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert hypervolume(two, [1.1, 1.1]) == pytest.approx(0.21)
    rng = np.random.default_rng(3)
    points = rng.random((7, 3))
    reference = np.full(3, REFERENCE_MARGIN)
    assert hypervolume(points, reference) == pytest.approx(_union_volume(points, reference))
    assert hypervolume(np.array([[2.0, 0.0]]), [1.1, 1.1]) == 0.0


def test_hypervolume_history(loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, frame = loaded
    history = hypervolume_history(frame, info)
    competing = frame[(frame["state"] == "COMPLETE") & frame["feasible"]]
    assert list(history["number"]) == sorted(competing["number"])
    values = history["hypervolume"].to_numpy()
    assert (np.diff(values) >= -1e-12).all() and 0 < values[-1] <= 1
    front = competing[competing["number"].isin(pareto_numbers(frame, info))]
    losses = np.stack([-competing["accuracy"], -competing["fairness"], competing["latency_ms"]], axis=1)
    ideal, span = losses.min(axis=0), losses.max(axis=0) - losses.min(axis=0)
    scaled = (np.stack([-front["accuracy"], -front["fairness"], front["latency_ms"]], axis=1) - ideal) / span
    expected = _union_volume(scaled, np.full(3, REFERENCE_MARGIN)) / REFERENCE_MARGIN ** 3
    assert values[-1] == pytest.approx(expected)
    empty = hypervolume_history(frame[frame["state"] == "FAIL"], info)
    assert empty.empty and list(empty.columns) == ["number", "hypervolume"]


def test_summary_and_table(seeded_db, loaded) -> None:  # type: ignore[no-untyped-def]
    info, _, frame = loaded
    demo = seeded_db.demo
    counts = state_counts(frame)
    assert counts["FAIL"] == len(demo.failed) and counts["RUNNING"] == 1 and counts["PRUNED"] == 1
    assert counts["WAITING"] == 0
    row = study_summary(info, frame, pareto_size=len(pareto_numbers(frame, info)))
    assert row["latency"] == "FAKE" and row["space"] == "esfair" and row["device"] == "fake"
    assert row["infeasible"] == len(demo.infeasible) - 1 + len(demo.trained_infeasible)  # PRUNED is not COMPLETE
    feasible = frame[frame["number"].isin(demo.feasible)]
    assert row["best accuracy"] == pytest.approx(feasible["accuracy"].max())
    assert row["best latency_ms"] == pytest.approx(feasible["latency_ms"].min())
    older = dict(row, study="older", **{"last activity": pd.Timestamp("2020-01-01")})
    never = dict(row, study="never", **{"last activity": None})
    assert list(studies_table([older, never, row])["study"]) == ["esfair-demo", "older", "never"]


def test_trials_frame_of_empty_study() -> None:
    info = _info(ESFAIR_NAMES, ["maximize", "maximize", "minimize"])
    frame = with_front(trials_frame([], info), info)
    assert frame.empty and {"accuracy", "front", "number"} <= set(frame.columns)
    assert state_counts(frame)["COMPLETE"] == 0


def test_trials_without_hwsearch_attrs_are_feasible_when_complete() -> None:
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


def test_trial_detail_frames(loaded) -> None:  # type: ignore[no-untyped-def]
    _, trials, frame = loaded
    number = int(frame.loc[frame["trained"], "number"].iloc[0])
    metrics = trials[number].user_attrs["metrics"]
    groups = detail.group_accuracy_frame(metrics)
    assert list(groups["group"]) == ["light", "medium", "dark"]
    assert groups.loc[groups["minority"], "group"].tolist() == ["dark"]
    matrix = detail.confusion_frame(metrics)
    assert list(matrix.index) == ["nevus", "melanoma", "keratosis"] == list(matrix.columns)
    assert int(matrix.to_numpy().sum()) == sum(metrics["group_counts"].values())
    stats = detail.latency_stats_frame(metrics["latency"])
    assert list(stats["stat"]) == ["min", "median", "mean", "p90"] and stats["ms"].is_monotonic_increasing
    stages = detail.stage_frame(trials[number].user_attrs["stage_seconds"])
    assert stages["share"].sum() == pytest.approx(1.0) and stages["stage"].iloc[0] == "build"
    assert detail.confusion_frame({}).empty and detail.stage_frame({}).empty


def test_export_command_is_quoted() -> None:
    command = detail.export_command("sqlite:///runs/hw.db", "my study", 7, detail.default_export_dir("my study", 7))
    assert command == ("python -m search.export --storage sqlite:///runs/hw.db --study 'my study' "
                       "--trial 7 --out 'exports/my study/trial_7'")


def test_artifact_resolution_and_hash(tmp_path: Path) -> None:
    out_dir = tmp_path / "runs" / "s"
    (out_dir / "trial_1").mkdir(parents=True)
    artifact = out_dir / "trial_1" / "model.onnx"
    artifact.write_bytes(b"onnx bytes")
    assert detail.resolve_artifact(str(artifact), "", tmp_path) == artifact
    relative = detail.resolve_artifact("trial_1/model.onnx", str(out_dir), tmp_path / "elsewhere")
    assert relative == out_dir / "trial_1" / "model.onnx"
    assert detail.resolve_artifact("missing.onnx", str(out_dir), tmp_path) is None
    assert detail.resolve_artifact("", str(out_dir), tmp_path) is None
    good = detail.read_artifact(artifact, hashlib.sha256(b"onnx bytes").hexdigest())
    assert good.data == b"onnx bytes" and good.matches is True
    assert detail.read_artifact(artifact, "0" * 64).matches is False
    assert detail.read_artifact(artifact, "").matches is None
