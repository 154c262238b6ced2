"""Metrics against hand-computed tables and against fairlearn / scikit-learn directly."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, equalized_odds_difference
from sklearn.metrics import accuracy_score, confusion_matrix

from evaluators.metrics import classification_figures, multiclass_equalized_odds_difference

# Hand table: 2 classes, 3 groups (L: 5 samples, D: 2, M: 3).
#   L: true 0 0 1 1 0  pred 0 0 1 0 0  -> 4/5 = 0.8
#   D: true 0 1        pred 1 1        -> 1/2 = 0.5
#   M: true 1 0 1      pred 1 0 1      -> 3/3 = 1.0
Y_TRUE = [0, 0, 1, 1, 0, 0, 1, 1, 0, 1]
Y_PRED = [0, 0, 1, 0, 0, 1, 1, 1, 0, 1]
GROUPS = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2]
GROUP_NAMES = ["L", "D", "M"]
CLASS_NAMES = ["benign", "malignant"]


def test_hand_table_accuracy_groups_and_confusion():
    figures = classification_figures(Y_TRUE, Y_PRED, GROUPS, class_names=CLASS_NAMES, group_names=GROUP_NAMES)
    assert figures.accuracy == pytest.approx(0.8)
    assert figures.per_group_accuracy == pytest.approx({"L": 0.8, "D": 0.5, "M": 1.0})
    assert figures.group_counts == {"L": 5, "D": 2, "M": 3}
    assert figures.confusion_matrix == [[4, 1], [1, 4]]
    assert figures.class_names == CLASS_NAMES
    assert figures.absent_groups == []


def test_hand_table_default_minority_is_smallest_group():
    fairness = classification_figures(
        Y_TRUE, Y_PRED, GROUPS, class_names=CLASS_NAMES, group_names=GROUP_NAMES
    ).fairness
    assert fairness.minority_group == "D"
    assert fairness.spd == pytest.approx((0.3 + 0.0 + 0.5) / 3)
    assert fairness.fairness_part == 0.0  # SPD 0.267 > 0.2
    assert fairness.worst_group_accuracy == pytest.approx(0.5)
    assert fairness.accuracy_gap == pytest.approx(0.5)
    # Class 1 positive: TPR L 1/2, D 1, M 1 (diff 0.5); FPR L 0, D 1, M 0 (diff 1).
    assert fairness.equalized_odds_difference == pytest.approx(1.0)


def test_hand_table_given_minority():
    fairness = classification_figures(
        Y_TRUE, Y_PRED, GROUPS, class_names=CLASS_NAMES, group_names=GROUP_NAMES, minority_group="L"
    ).fairness
    assert fairness.minority_group == "L"
    assert fairness.spd == pytest.approx((0.0 + 0.3 + 0.2) / 3)
    assert fairness.fairness_part == pytest.approx(((0.2 - 0.5 / 3) / 0.2) / 3)


def test_equalized_odds_is_max_over_classes_one_vs_rest():
    # Group a perfect; group b mistakes one class-2 sample for class 1.
    # One-vs-rest: class 0 -> 0, class 1 -> FPR_b 1/3, class 2 -> TPR_b 1/2. Maximum 1/2.
    y_true = [0, 1, 2, 2, 0, 1, 2, 2]
    y_pred = [0, 1, 2, 2, 0, 1, 2, 1]
    groups = [0, 0, 0, 0, 1, 1, 1, 1]
    figures = classification_figures(y_true, y_pred, groups, class_names=["x", "y", "z"], group_names=["a", "b"])
    assert figures.fairness.equalized_odds_difference == pytest.approx(0.5)
    sensitive = np.array(["a", "b"], dtype=object)[groups]
    per_class = [
        equalized_odds_difference(np.array(y_true) == c, np.array(y_pred) == c, sensitive_features=sensitive)
        for c in range(3)
    ]
    assert per_class == pytest.approx([0.0, 1 / 3, 0.5])


def test_ties_for_minority_take_the_first_group_in_order():
    figures = classification_figures([0, 1, 0, 1], [0, 1, 1, 1], [1, 1, 0, 0], class_names=["a", "b"], group_names=["g0", "g1"])
    assert figures.fairness.minority_group == "g0"
    assert figures.fairness.spd == pytest.approx(0.5 / 2)


def test_agrees_with_fairlearn_and_sklearn_on_random_data():
    rng = np.random.default_rng(3)
    n, classes, group_names = 500, 4, ["I-II", "III-IV", "V-VI"]
    y_true = rng.integers(0, classes, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, classes, n))
    groups = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    figures = classification_figures(
        y_true, y_pred, groups, class_names=[f"c{i}" for i in range(classes)], group_names=group_names
    )
    sensitive = np.array(group_names, dtype=object)[groups]
    frame = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)
    expected = {str(k): float(v) for k, v in frame.by_group.items()}
    assert figures.per_group_accuracy == pytest.approx(expected)
    assert figures.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert figures.confusion_matrix == confusion_matrix(y_true, y_pred, labels=range(classes)).tolist()
    assert figures.group_counts == {name: int((sensitive == name).sum()) for name in group_names}
    eod = max(
        equalized_odds_difference(y_true == c, y_pred == c, sensitive_features=sensitive) for c in range(classes)
    )
    assert figures.fairness.equalized_odds_difference == pytest.approx(eod)
    assert multiclass_equalized_odds_difference(y_true, y_pred, sensitive, classes) == pytest.approx(eod)
    assert figures.fairness.minority_group == "V-VI"
    accs = expected.values()
    assert figures.fairness.worst_group_accuracy == pytest.approx(min(accs))
    assert figures.fairness.accuracy_gap == pytest.approx(max(accs) - min(accs))
    minority = expected["V-VI"]
    assert figures.fairness.spd == pytest.approx(sum(abs(a - minority) for a in accs) / 3)


def test_absent_group_is_excluded_and_reported():
    figures = classification_figures(
        [0, 1, 0, 1], [0, 1, 1, 1], [0, 0, 2, 2], class_names=["a", "b"], group_names=["g0", "g1", "g2"]
    )
    assert figures.absent_groups == ["g1"]
    assert figures.group_counts == {"g0": 2, "g1": 0, "g2": 2}
    assert set(figures.per_group_accuracy) == {"g0", "g2"}
    assert figures.fairness.spd == pytest.approx(0.5 / 2)  # two present groups, not three
    with pytest.raises(ValueError, match="no samples"):
        classification_figures(
            [0, 1], [0, 1], [0, 0], class_names=["a", "b"], group_names=["g0", "g1"], minority_group="g1"
        )


@pytest.mark.parametrize(
    ("y_true", "y_pred", "groups", "minority", "message"),
    [
        ([], [], [], None, "no samples"),
        ([0, 1], [0], [0, 0], None, "length"),
        ([0, 2], [0, 1], [0, 0], None, "outside"),
        ([0, 1], [0, 1], [0, 5], None, "outside"),
        ([0, 1], [0, 1], [0, 1], "nobody", "not one of"),
        ([0.0, 1.0], [0, 1], [0, 1], None, "integer"),
    ],
)
def test_bad_inputs_raise_clear_errors(y_true, y_pred, groups, minority, message):
    with pytest.raises(ValueError, match=message):
        classification_figures(
            y_true, y_pred, groups, class_names=["a", "b"], group_names=["g0", "g1"], minority_group=minority
        )
