"""Group-stratified bootstrap intervals: coverage, determinism, stratification, agreement with metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluators.intervals import (
    bootstrap_figures,
    group_figures,
    minority_index,
    percentile_interval,
    resample_group_correct,
)
from evaluators.metrics import classification_figures

SHARES = np.array([0.5, 0.38, 0.12])
TRUE_ACCURACY = np.array([0.85, 0.8, 0.6])


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 classes, 3 groups of fixed shares; each group right with its own true accuracy."""
    rng = np.random.default_rng(seed)
    sizes = np.round(SHARES * n).astype(int)
    groups = np.repeat(np.arange(3), sizes)
    y_true = rng.integers(0, 4, len(groups))
    right = rng.random(len(groups)) < TRUE_ACCURACY[groups]
    y_pred = np.where(right, y_true, (y_true + 1 + rng.integers(0, 3, len(groups))) % 4)
    return y_true, y_pred, groups


def test_point_estimates_equal_the_metrics() -> None:
    y_true, y_pred, groups = synthetic(400, 0)
    names = ["light", "medium", "dark"]
    figures = classification_figures(y_true, y_pred, groups, class_names=list("abcd"), group_names=names)
    result = bootstrap_figures(y_true, y_pred, groups, group_names=names)
    assert result.accuracy.point == pytest.approx(figures.accuracy)
    assert {k: v.point for k, v in result.per_group_accuracy.items()} == pytest.approx(figures.per_group_accuracy)
    assert result.spd.point == pytest.approx(figures.fairness.spd)
    assert result.worst_group_accuracy.point == pytest.approx(figures.fairness.worst_group_accuracy)
    assert result.minority_group == figures.fairness.minority_group == "dark"


def test_intervals_contain_the_point_and_are_ordered() -> None:
    result = bootstrap_figures(*synthetic(1000, 1))
    intervals = [result.accuracy, result.spd, result.worst_group_accuracy, *result.per_group_accuracy.values()]
    for interval in intervals:
        assert interval.low <= interval.point <= interval.high
        assert interval.low < interval.high


def test_deterministic_for_a_seed() -> None:
    data = synthetic(500, 2)
    assert bootstrap_figures(*data, seed=7) == bootstrap_figures(*data, seed=7)
    correct, groups = data[0] == data[1], data[2]
    first, again = (resample_group_correct(correct, groups, seed=7) for _ in range(2))
    assert np.array_equal(first.resampled, again.resampled)
    assert not np.array_equal(first.resampled, resample_group_correct(correct, groups, seed=8).resampled)


def test_narrower_with_more_samples() -> None:
    small, large = bootstrap_figures(*synthetic(300, 3)), bootstrap_figures(*synthetic(3000, 3))
    for name in ("accuracy", "spd", "worst_group_accuracy"):
        a, b = getattr(small, name), getattr(large, name)
        assert b.high - b.low < 0.6 * (a.high - a.low), name


def test_95_percent_intervals_cover_the_true_accuracy() -> None:
    true_accuracy = float(SHARES @ TRUE_ACCURACY)
    hits = {"accuracy": 0, "dark": 0}
    runs = 200
    for seed in range(runs):
        result = bootstrap_figures(*synthetic(600, 100 + seed), n_resamples=500, seed=seed)
        hits["accuracy"] += result.accuracy.low <= true_accuracy <= result.accuracy.high
        dark = result.per_group_accuracy["2"]
        hits["dark"] += dark.low <= TRUE_ACCURACY[2] <= dark.high
    for name, hit in hits.items():
        assert 0.89 <= hit / runs <= 0.99, (name, hit / runs)


def test_resamples_are_stratified_and_paired() -> None:
    _, _, groups = synthetic(500, 4)
    everything_right = resample_group_correct(np.ones(len(groups), dtype=bool), groups, n_resamples=50)
    assert np.all(everything_right.resampled[:, 0] == everything_right.group_sizes)  # each group keeps its count
    rng = np.random.default_rng(0)
    correct = rng.random((2, len(groups))) < 0.7
    paired = resample_group_correct(np.stack([correct[0], correct[0], correct[1]]), groups, n_resamples=50)
    assert np.array_equal(paired.resampled[:, 0], paired.resampled[:, 1])
    alone = resample_group_correct(correct[1], groups, n_resamples=50)
    assert np.array_equal(paired.resampled[:, 2], alone.resampled[:, 0])  # the draws depend on the groups only


def test_absent_groups_and_the_named_minority() -> None:
    y_true, y_pred, groups = synthetic(300, 5)
    names = ["light", "medium", "dark", "unseen"]
    result = bootstrap_figures(y_true, y_pred, groups, group_names=names, minority_group="medium")
    assert set(result.per_group_accuracy) == {"light", "medium", "dark"}
    assert result.minority_group == "medium"
    figures = classification_figures(y_true, y_pred, groups, class_names=list("abcd"), group_names=names,
                                     minority_group="medium")
    assert result.spd.point == pytest.approx(figures.fairness.spd)
    with pytest.raises(ValueError, match="no samples"):
        bootstrap_figures(y_true, y_pred, groups, group_names=names, minority_group="unseen")
    with pytest.raises(ValueError, match="not one of"):
        bootstrap_figures(y_true, y_pred, groups, group_names=names, minority_group="nope")


def test_vectorised_figures_match_a_loop() -> None:
    sizes = np.array([10, 0, 4])
    counts = np.array([[7, 0, 1], [10, 0, 4]])
    figures = group_figures(counts, sizes, minority_index(sizes))
    assert minority_index(sizes) == 2
    np.testing.assert_allclose(figures["accuracy"], [8 / 14, 1.0])
    np.testing.assert_allclose(figures["per_group_accuracy"], [[0.7, 0.25], [1.0, 1.0]])
    np.testing.assert_allclose(figures["spd"], [0.45 / 2, 0.0])
    np.testing.assert_allclose(figures["worst_group_accuracy"], [0.25, 1.0])


def test_to_dict_is_json_safe() -> None:
    data = json.loads(json.dumps(bootstrap_figures(*synthetic(200, 6), group_names=["a", "b", "c"]).to_dict()))
    assert set(data) >= {"accuracy", "per_group_accuracy", "spd", "worst_group_accuracy", "minority_group"}
    assert set(data["accuracy"]) == {"point", "low", "high"} and data["n_resamples"] == 1000


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        bootstrap_figures([0, 1], [0], [0, 1])
    with pytest.raises(ValueError, match="level"):
        percentile_interval(0.5, np.array([0.4, 0.6]), level=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        resample_group_correct(np.ones(3, dtype=bool), np.zeros(3, dtype=np.int64), n_resamples=0)
