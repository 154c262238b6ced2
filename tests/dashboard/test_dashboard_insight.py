"""Parameter importances (Optuna's) and per-dimension effects."""

from __future__ import annotations

import pytest

from dashboard.insight import (
    InsightError,
    dimension_effects,
    effect_dimensions,
    importance_trials,
    make_evaluator,
    param_importances,
)


def test_importances_per_objective(loaded) -> None:  # type: ignore[no-untyped-def]
    info, trials, frame = loaded
    latency = param_importances(trials, frame, info, "latency_ms", evaluator="ped-anova")
    assert set(latency["param"]) >= {"backbone", "resolution", "quant", "width", "prune_ratio"}
    assert latency["importance"].is_monotonic_decreasing
    assert latency["importance"].sum() == pytest.approx(1.0)


def test_importance_trials_follow_the_frame_rules(loaded) -> None:  # type: ignore[no-untyped-def]
    _, trials, frame = loaded
    trained = frame[(frame["state"] == "COMPLETE") & frame["trained"]]
    accuracy = importance_trials(trials, frame, "accuracy")
    latency = importance_trials(trials, frame, "latency_ms")
    assert len(accuracy) == len(trained)
    assert len(latency) == int((frame["state"] == "COMPLETE").sum())  # untrained ones count for latency
    assert sorted(t.value for t in accuracy) == pytest.approx(sorted(trained["accuracy"]))


def test_importance_errors(loaded) -> None:  # type: ignore[no-untyped-def]
    info, trials, frame = loaded
    with pytest.raises(InsightError, match="at least"):
        param_importances(trials[:2], frame[frame["number"] < 2], info, "accuracy")
    with pytest.raises(InsightError, match="no objective"):
        param_importances(trials, frame, info, "nope")
    with pytest.raises(InsightError, match="unknown importance evaluator"):
        make_evaluator("shap")


def test_dimension_effects(loaded) -> None:  # type: ignore[no-untyped-def]
    _, _, frame = loaded
    assert effect_dimensions(frame)[:5] == ["quant", "resolution", "prune_ratio", "width", "backbone"]
    table = dimension_effects(frame, "resolution", "latency_ms")
    values = [int(v) for v in table["value"]]
    assert values == sorted(values)
    complete = frame[frame["state"] == "COMPLETE"]
    assert table["trials"].sum() == len(complete)
    for _, row in table.iterrows():
        subset = complete.loc[complete["param.resolution"].astype(str) == row["value"], "latency_ms"]
        assert row["median"] == pytest.approx(subset.median())
    accuracy = dimension_effects(frame, "quant", "accuracy")
    assert accuracy["trials"].sum() == int((complete["trained"]).sum())
    assert dimension_effects(frame, "no_such_param", "accuracy").empty
