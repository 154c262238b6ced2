"""Group-stratified bootstrap intervals of accuracy and group-fairness figures (vectorised numpy).

The evaluated split is resampled **within each group** (with replacement, each group keeping its
number of samples), so a resample has the split's group composition, as a deployment's test set
of the same make-up would; the minority group therefore has the same size, and the same identity,
in every resample. A figure's interval is the percentile interval of its values over the
resamples (default 1000 resamples, 95 %). Everything here is a function of which samples a model
classified correctly:

- accuracy: correct / samples;
- per-group accuracy, over the groups present in the split (absent ones have no accuracy);
- ESFair SPD: ``sum_g |acc_g - acc_minority| / n_groups`` over the present groups
  (:func:`spaces.scores.esfair_spd`); minority: the named group, else the present group with the
  fewest samples (ties: the lowest index), as in :func:`evaluators.metrics.classification_figures`;
- worst-group accuracy: the lowest per-group accuracy.

Several prediction vectors on the same samples (seeds, methods) share the same resamples
(:func:`resample_group_correct` with a ``(K, N)`` matrix), so differences between them get
paired intervals.

Caveat: SPD is a sum of absolute differences, so it is biased upwards in small groups and its
resamples are more so; when the groups' accuracies are nearly equal the percentile interval of
SPD can lie above the point estimate. Read such an interval as "SPD is at most ``high``".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval ``[low, high]``."""

    point: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """``{"point", "low", "high"}`` as plain floats."""
        return {"point": self.point, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class GroupResamples:
    """Correct-prediction counts per group, in the data and in every stratified resample.

    Invariants: ``resampled[b, k, g] <= group_sizes[g]``; the resamples do not depend on the
    predictions, only on ``groups``, ``n_resamples`` and ``seed``, so every row ``k`` of the
    same call is resampled identically (paired).

    Attributes:
        group_sizes: ``(G,)`` samples of each group in the split.
        point: ``(K, G)`` correct predictions of each prediction vector in each group.
        resampled: ``(B, K, G)`` the same counts in each of the ``B`` resamples.
    """

    group_sizes: np.ndarray
    point: np.ndarray
    resampled: np.ndarray


@dataclass(frozen=True)
class FigureIntervals:
    """Accuracy and fairness figures of one evaluation, each with its bootstrap interval.

    Attributes:
        accuracy: Top-1 accuracy.
        per_group_accuracy: Accuracy of each group present in the split, by name.
        spd: ESFair SPD against ``minority_group``.
        worst_group_accuracy: Lowest per-group accuracy.
        minority_group: The group SPD compares with.
        n_resamples: Bootstrap resamples.
        level: Coverage of the intervals (0.95).
        seed: Seed of the resamples.
        method: How the intervals were made, for readers of stored figures.
    """

    accuracy: Interval
    per_group_accuracy: dict[str, Interval]
    spd: Interval
    worst_group_accuracy: Interval
    minority_group: str
    n_resamples: int
    level: float
    seed: int
    method: str = field(default="group-stratified percentile bootstrap")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested dictionary of plain floats, ints and strings."""
        return {
            "accuracy": self.accuracy.to_dict(),
            "per_group_accuracy": {name: i.to_dict() for name, i in self.per_group_accuracy.items()},
            "spd": self.spd.to_dict(),
            "worst_group_accuracy": self.worst_group_accuracy.to_dict(),
            "minority_group": self.minority_group,
            "n_resamples": self.n_resamples,
            "level": self.level,
            "seed": self.seed,
            "method": self.method,
        }


def resample_group_correct(
    correct: np.ndarray, groups: np.ndarray, *, num_groups: int | None = None,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
) -> GroupResamples:
    """Group-stratified bootstrap of correct-prediction counts.

    Args:
        correct: ``(N,)`` or ``(K, N)`` booleans, whether each of ``K`` prediction vectors got
            each sample right.
        groups: ``(N,)`` group index of each sample.
        num_groups: Groups of the data set (default: the largest index + 1); groups without
            samples get size 0.
        n_resamples: Number of resamples ``B``.
        seed: Seed of the resamples.

    Raises:
        ValueError: Empty or mismatched inputs, negative or out-of-range groups, ``B < 1``.
    """
    correct_a = np.atleast_2d(np.asarray(correct, dtype=bool))
    groups_a = np.asarray(groups)
    if correct_a.ndim != 2 or groups_a.ndim != 1 or correct_a.shape[1] != len(groups_a) or len(groups_a) == 0:
        raise ValueError(f"need correct (K, N) and groups (N,) with N > 0, got {correct_a.shape} and {groups_a.shape}")
    if not np.issubdtype(groups_a.dtype, np.integer) or groups_a.min() < 0:
        raise ValueError("groups must be non-negative integer indices")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    num_groups = int(groups_a.max()) + 1 if num_groups is None else num_groups
    if groups_a.max() >= num_groups:
        raise ValueError(f"group index {groups_a.max()} out of range for {num_groups} groups")
    rng = np.random.default_rng(seed)
    sizes = np.bincount(groups_a, minlength=num_groups)
    point = np.zeros((correct_a.shape[0], num_groups), dtype=np.int64)
    resampled = np.zeros((n_resamples, correct_a.shape[0], num_groups), dtype=np.int64)
    for g in np.flatnonzero(sizes):
        members = correct_a[:, groups_a == g]
        point[:, g] = members.sum(axis=1)
        draws = rng.integers(0, sizes[g], size=(n_resamples, sizes[g]))
        resampled[:, :, g] = members[:, draws].sum(axis=2).T
    return GroupResamples(group_sizes=sizes, point=point, resampled=resampled)


def minority_index(group_sizes: np.ndarray, minority: int | None = None) -> int:
    """The minority group: ``minority`` when given (it must have samples), else the present group
    with the fewest samples, the lowest index on ties.

    Raises:
        ValueError: When the named group has no samples.
    """
    if minority is not None:
        if not 0 <= minority < len(group_sizes) or group_sizes[minority] == 0:
            raise ValueError(f"minority group {minority} has no samples in the evaluated split")
        return minority
    present = np.flatnonzero(group_sizes)
    return int(present[np.argmin(group_sizes[present])])


def group_figures(correct_counts: np.ndarray, group_sizes: np.ndarray, minority: int) -> dict[str, np.ndarray]:
    """Accuracy, per-group accuracy, SPD and worst-group accuracy from correct counts.

    Vectorised over any leading dimensions of ``correct_counts`` (``(..., G)``): a point
    ``(K, G)`` gives ``(K,)`` figures, resamples ``(B, K, G)`` give ``(B, K)``.

    Args:
        correct_counts: ``(..., G)`` correct predictions per group.
        group_sizes: ``(G,)`` samples per group.
        minority: Index of the group SPD compares with (present).

    Returns:
        ``accuracy``, ``spd``, ``worst_group_accuracy`` of shape ``(...)`` and
        ``per_group_accuracy`` of shape ``(..., P)`` over the ``P`` present groups in index order.
    """
    present = np.flatnonzero(group_sizes)
    counts = np.asarray(correct_counts, dtype=np.float64)
    per_group = counts[..., present] / group_sizes[present]
    reference = counts[..., minority] / group_sizes[minority]
    return {
        "accuracy": counts.sum(axis=-1) / group_sizes.sum(),
        "per_group_accuracy": per_group,
        "spd": np.abs(per_group - reference[..., None]).sum(axis=-1) / len(present),
        "worst_group_accuracy": per_group.min(axis=-1),
    }


def percentile_interval(point: float, samples: np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    """``point`` with the ``level`` percentile interval of ``samples`` (linear interpolation)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(np.asarray(samples, dtype=np.float64), [tail, 100.0 - tail])
    return Interval(float(point), float(low), float(high))


def bootstrap_figures(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, groups: Sequence[int] | np.ndarray,
    *, group_names: Sequence[str] | None = None, minority_group: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0,
) -> FigureIntervals:
    """Accuracy, per-group accuracy, SPD and worst-group accuracy with stratified bootstrap intervals.

    Point estimates equal :func:`evaluators.metrics.classification_figures`'s for the same
    inputs. 1000 resamples of 1000 samples take a few milliseconds.

    Args:
        y_true: True class index of each sample.
        y_pred: Predicted class index of each sample.
        groups: Group index of each sample.
        group_names: Names of the groups (default: ``"0"``, ``"1"``, ...).
        minority_group: Name of the group SPD compares with (default: the smallest present one).
        n_resamples: Bootstrap resamples.
        level: Coverage of the intervals.
        seed: Seed of the resamples; the same inputs and seed give the same intervals.

    Raises:
        ValueError: Mismatched or empty inputs, an unknown or absent ``minority_group``.
    """
    y_true_a, y_pred_a, groups_a = (np.asarray(a) for a in (y_true, y_pred, groups))
    if y_true_a.shape != y_pred_a.shape or y_true_a.shape != groups_a.shape or groups_a.size == 0:
        raise ValueError(
            f"need non-empty y_true, y_pred and groups of one shape, got {y_true_a.shape}, {y_pred_a.shape}, "
            f"{groups_a.shape}"
        )
    names = [str(g) for g in range(int(groups_a.max()) + 1)] if group_names is None else list(group_names)
    resamples = resample_group_correct(y_true_a == y_pred_a, groups_a, num_groups=len(names),
                                       n_resamples=n_resamples, seed=seed)
    if minority_group is not None and minority_group not in names:
        raise ValueError(f"minority_group {minority_group!r} is not one of {', '.join(names)}")
    minority = minority_index(resamples.group_sizes, None if minority_group is None else names.index(minority_group))
    point = group_figures(resamples.point[0], resamples.group_sizes, minority)
    samples = group_figures(resamples.resampled[:, 0], resamples.group_sizes, minority)
    present = np.flatnonzero(resamples.group_sizes)
    return FigureIntervals(
        accuracy=percentile_interval(point["accuracy"], samples["accuracy"], level),
        per_group_accuracy={
            names[g]: percentile_interval(point["per_group_accuracy"][i], samples["per_group_accuracy"][:, i], level)
            for i, g in enumerate(present)
        },
        spd=percentile_interval(point["spd"], samples["spd"], level),
        worst_group_accuracy=percentile_interval(point["worst_group_accuracy"], samples["worst_group_accuracy"], level),
        minority_group=names[minority],
        n_resamples=n_resamples,
        level=level,
        seed=seed,
    )
