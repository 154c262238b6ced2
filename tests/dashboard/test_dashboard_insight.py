"""Parameter importances (Optuna's), per-dimension effects and the fairness methods' effect."""

from __future__ import annotations

import pytest

from dashboard.insight import (
    InsightError,
    dimension_effects,
    effect_dimensions,
    fairness_figures,
    fairness_method_effects,
    importance_trials,
    make_evaluator,
    param_importances,
)


def test_importances_per_objective(demo) -> None:  # type: ignore[no-untyped-def]
    latency = param_importances(demo.trials, demo.frame, demo.info, "latency_ms", evaluator="ped-anova")
    assert set(latency["param"]) >= {"backbone", "resolution", "quant", "width", "prune_ratio"}
    assert latency["importance"].is_monotonic_decreasing
    assert latency["importance"].sum() == pytest.approx(1.0)


def test_importance_trials_follow_the_frame_rules(demo) -> None:  # type: ignore[no-untyped-def]
    frame = demo.frame
    trained = frame[(frame["state"] == "COMPLETE") & frame["trained"]]
    accuracy = importance_trials(demo.trials, frame, "accuracy")
    latency = importance_trials(demo.trials, frame, "latency_ms")
    assert len(accuracy) == len(trained)  # stopped (PRUNED) trials carry lower-fidelity figures: left out
    assert len(latency) == int((frame["state"] == "COMPLETE").sum())  # untrained ones count for latency
    assert sorted(t.value for t in accuracy) == pytest.approx(sorted(trained["accuracy"]))


def test_importance_errors(demo) -> None:  # type: ignore[no-untyped-def]
    frame = demo.frame
    with pytest.raises(InsightError, match="at least"):
        param_importances(demo.trials[:2], frame[frame["number"] < 2], demo.info, "accuracy")
    with pytest.raises(InsightError, match="no objective"):
        param_importances(demo.trials, frame, demo.info, "nope")
    with pytest.raises(InsightError, match="unknown importance evaluator"):
        make_evaluator("shap")


def test_dimension_effects(demo) -> None:  # type: ignore[no-untyped-def]
    frame = demo.frame
    first = ["quant", "resolution", "prune_ratio", "width", "backbone", "fairness_method"]
    assert effect_dimensions(frame)[:6] == first
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


def test_fairness_method_effects(demo, legacy) -> None:  # type: ignore[no-untyped-def]
    assert list(fairness_figures(demo.info)) == ["accuracy", "minority accuracy", "SPD"]
    table = fairness_method_effects(demo.frame, demo.info).set_index("method")
    frame = demo.frame
    counted = frame[(frame["state"] == "COMPLETE") & frame["trained"]]
    assert table["trials"].sum() == len(counted)
    order = ["none", "balanced_sampler", "reweight", "groupdro"]
    assert list(table.index) == [m for m in order if m in set(counted["fairness_method"])]
    for method, row in table.iterrows():
        subset = counted[counted["fairness_method"] == method]
        assert row["minority accuracy median"] == pytest.approx(subset["minority_accuracy"].median())
        assert row["SPD q25"] <= row["SPD median"] <= row["SPD q75"]
        assert row["accuracy median"] == pytest.approx(subset["accuracy"].median())
    old = fairness_method_effects(legacy.frame, legacy.info)
    assert list(old["method"]) == ["none"]  # older trials without the parameter count as none
