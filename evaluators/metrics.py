"""Accuracy and group-fairness figures of one evaluation, from labels, predictions and groups.

Pure numpy plus fairlearn; the caller runs the model (the shipped ONNX artifact) and passes
integer predictions. The figures feed :class:`evaluators.contracts.Metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from dataclasses import dataclass

import numpy as np
from fairlearn.metrics import equalized_odds_difference

from evaluators.contracts import FairnessFigures
from spaces.scores import esfair_fairness_part, esfair_spd


@dataclass
class ClassificationFigures:
    """Accuracy, per-group figures and fairness of one evaluated split.

    Invariants: ``group_counts`` has every group of ``group_names`` (0 for absent ones);
    ``per_group_accuracy`` has exactly the groups with at least one sample, and ``absent_groups``
    the others, so fairness figures are computed over the present groups only;
    ``sum(group_counts.values())`` is the number of samples; ``confusion_matrix`` is
    ``len(class_names)`` square, rows true class, columns predicted class.

    Attributes:
        accuracy: Top-1 accuracy over all samples.
        per_group_accuracy: Accuracy of each present group, by name.
        group_counts: Samples of each group, by name.
        confusion_matrix: Counts, rows true class, columns predicted class.
        class_names: Class names in confusion-matrix order.
        fairness: SPD, ESFair fairness part, worst-group accuracy, gap, equalized odds; ``None``
            for data without groups (then ``per_group_accuracy`` and ``group_counts`` are empty).
        absent_groups: Groups of ``group_names`` without samples in this split.
    """

    accuracy: float
    per_group_accuracy: dict[str, float]
    group_counts: dict[str, int]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    fairness: FairnessFigures | None
    absent_groups: list[str]


def classification_figures(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    groups: Sequence[int] | np.ndarray,
    *,
    class_names: Sequence[str],
    group_names: Sequence[str],
    minority_group: str | None = None,
    grouped: bool = True,
) -> ClassificationFigures:
    """Accuracy, per-group accuracy, confusion matrix and fairness figures.

    Definitions:

    - SPD and the fairness part are ESFair's (:func:`spaces.scores.esfair_spd`,
      :func:`spaces.scores.esfair_fairness_part`): ``sum_g |acc_g - acc_minority| / n_groups``
      over the groups present in this split.
    - Minority group: ``minority_group`` when given, else the present group with the fewest
      samples in this split (ties: the first in ``group_names`` order).
    - Worst-group accuracy: the lowest per-group accuracy; gap: best minus worst.
    - Equalized-odds difference: fairlearn's ``equalized_odds_difference`` accepts binary labels
      only, so it is computed one-vs-rest for every class of ``class_names`` (positive = that
      class, in truth and in prediction) with the groups as sensitive feature, and the maximum
      over classes is reported. fairlearn's convention applies: a group with no positive of a
      class counts a true-positive rate of 0 for it.

    Groups without samples: they cannot have an accuracy, so they are excluded from
    ``per_group_accuracy`` and from every fairness figure, keep a count of 0 in ``group_counts``
    and are listed in ``absent_groups``. Naming an absent group as ``minority_group`` is an error.

    Args:
        y_true: True class index of each sample (into ``class_names``).
        y_pred: Predicted class index of each sample.
        groups: Group index of each sample (into ``group_names``).
        class_names: Names of the classes.
        group_names: Names of the groups.
        minority_group: Name of the group SPD compares with (default: see above).
        grouped: False for data without groups: no per-group or fairness figures.

    Raises:
        ValueError: Empty or unequal-length inputs, indices out of range, an unknown or
            absent ``minority_group``.
    """
    y_true_a = _indices(y_true, len(class_names), "y_true")
    y_pred_a = _indices(y_pred, len(class_names), "y_pred")
    groups_a = _indices(groups, len(group_names), "groups")
    if not len(y_true_a) == len(y_pred_a) == len(groups_a):
        raise ValueError(
            f"y_true, y_pred and groups differ in length: {len(y_true_a)}, {len(y_pred_a)}, {len(groups_a)}"
        )
    if len(y_true_a) == 0:
        raise ValueError("no samples to evaluate")

    correct = y_true_a == y_pred_a
    n_classes = len(class_names)
    confusion = np.bincount(y_true_a * n_classes + y_pred_a, minlength=n_classes * n_classes)
    if not grouped:
        return ClassificationFigures(
            accuracy=float(correct.mean()), per_group_accuracy={}, group_counts={},
            confusion_matrix=confusion.reshape(n_classes, n_classes).tolist(), class_names=list(class_names),
            fairness=None, absent_groups=[],
        )
    counts = np.bincount(groups_a, minlength=len(group_names))
    group_counts = {name: int(counts[i]) for i, name in enumerate(group_names)}
    present = [i for i in range(len(group_names)) if counts[i] > 0]
    per_group_accuracy = {group_names[i]: float(correct[groups_a == i].mean()) for i in present}
    absent_groups = [group_names[i] for i in range(len(group_names)) if counts[i] == 0]

    minority = _minority(minority_group, group_names, group_counts, present)
    spd = esfair_spd(per_group_accuracy, minority)
    accuracies = list(per_group_accuracy.values())
    fairness = FairnessFigures(
        minority_group=minority,
        spd=spd,
        fairness_part=esfair_fairness_part(spd),
        worst_group_accuracy=min(accuracies),
        accuracy_gap=max(accuracies) - min(accuracies),
        equalized_odds_difference=multiclass_equalized_odds_difference(
            y_true_a, y_pred_a, np.asarray(group_names, dtype=object)[groups_a], n_classes
        ),
    )
    return ClassificationFigures(
        accuracy=float(correct.mean()),
        per_group_accuracy=per_group_accuracy,
        group_counts=group_counts,
        confusion_matrix=confusion.reshape(n_classes, n_classes).tolist(),
        class_names=list(class_names),
        fairness=fairness,
        absent_groups=absent_groups,
    )


def multiclass_equalized_odds_difference(
    y_true: np.ndarray, y_pred: np.ndarray, sensitive: np.ndarray, n_classes: int
) -> float:
    """Maximum over classes of fairlearn's equalized-odds difference, one-vs-rest.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        sensitive: Group label of each sample.
        n_classes: Classes ``0 .. n_classes - 1`` to take one-vs-rest.
    """
    return max(
        float(equalized_odds_difference(y_true == c, y_pred == c, sensitive_features=sensitive))
        for c in range(n_classes)
    )


def _indices(values: Sequence[int] | np.ndarray, size: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ValueError(f"{name} holds indices outside 0..{size - 1}: {array.min()}..{array.max()}")
    return array


def _minority(
    requested: str | None, group_names: Sequence[str], group_counts: dict[str, int], present: list[int]
) -> str:
    if requested is None:
        return group_names[min(present, key=lambda i: (group_counts[group_names[i]], i))]
    if requested not in group_counts:
        raise ValueError(f"minority_group {requested!r} is not one of {', '.join(group_names)}")
    if group_counts[requested] == 0:
        raise ValueError(
            f"minority_group {requested!r} has no samples in the evaluated split: "
            "evaluate on a split that contains it, or name another group"
        )
    return requested


def figure_intervals(evaluation: Any, dataset: Any, *, seed: int = 0) -> dict[str, list[float]]:
    """Bootstrap 95 % intervals (resampled within each group) of an evaluation's figures, by metric path.

    Paths: ``accuracy``; for data with groups also ``per_group_accuracy.<group>``, ``fairness.spd``,
    ``fairness.worst_group_accuracy`` and ``fairness.fairness_part`` (ESFair's part is a decreasing
    function of SPD, so its interval is SPD's, mapped and swapped).

    Args:
        evaluation: An :class:`evaluators.evaluate.Evaluation`.
        dataset: The data set it ran on (group names, whether it has groups).
        seed: Seed of the resamples.
    """
    from evaluators.intervals import bootstrap_figures

    fairness = evaluation.figures.fairness
    boot = bootstrap_figures(evaluation.labels, evaluation.predictions, evaluation.groups,
                             group_names=dataset.group_names,
                             minority_group=fairness.minority_group if fairness else None, seed=seed)
    out = {"accuracy": [boot.accuracy.low, boot.accuracy.high]}
    if not dataset.grouped:
        return out
    out.update({f"per_group_accuracy.{name}": [i.low, i.high] for name, i in boot.per_group_accuracy.items()})
    out["fairness.spd"] = [boot.spd.low, boot.spd.high]
    out["fairness.worst_group_accuracy"] = [boot.worst_group_accuracy.low, boot.worst_group_accuracy.high]
    out["fairness.fairness_part"] = [esfair_fairness_part(boot.spd.high), esfair_fairness_part(boot.spd.low)]
    return out
