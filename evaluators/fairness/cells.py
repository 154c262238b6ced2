"""The group x class cells of a split, which every group-aware method balances over."""

from __future__ import annotations

import numpy as np


class FairnessMethodError(ValueError):
    """A fairness method that is unknown or cannot run on the given data."""


def label_arrays(labels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` and ``groups`` as equal-length, non-empty, non-negative int64 arrays.

    Raises:
        FairnessMethodError: When they are empty, differ in length, or hold negative indices.
    """
    labels_a = np.asarray(labels, dtype=np.int64).reshape(-1)
    groups_a = np.asarray(groups, dtype=np.int64).reshape(-1)
    if len(labels_a) != len(groups_a) or len(labels_a) == 0:
        raise FairnessMethodError(
            f"need as many labels as groups, at least one: got {len(labels_a)} and {len(groups_a)}"
        )
    if labels_a.min() < 0 or groups_a.min() < 0:
        raise FairnessMethodError("labels and groups must be non-negative indices")
    return labels_a, groups_a


def require_groups(groups: np.ndarray, method: str) -> None:
    """Fail when the split has fewer than two groups: ``method`` would have nothing to balance.

    Raises:
        FairnessMethodError: Naming the method and the fix.
    """
    present = np.unique(groups)
    if len(present) < 2:
        raise FairnessMethodError(
            f"fairness method {method!r} needs training data with two or more groups, but it has "
            f"{len(present)}: use fairness_method='none', or data with a group per image "
            "(grouped folder or a CSV with a group column)"
        )


def cell_counts(labels: np.ndarray, groups: np.ndarray, num_groups: int, num_classes: int) -> np.ndarray:
    """``(num_groups, num_classes)`` int64 counts of samples per group x class cell.

    Raises:
        FairnessMethodError: When an index is out of range.
    """
    if labels.max() >= num_classes or groups.max() >= num_groups:
        raise FairnessMethodError(
            f"indices out of range: labels up to {labels.max()} for {num_classes} classes, "
            f"groups up to {groups.max()} for {num_groups} groups"
        )
    flat = np.bincount(groups * num_classes + labels, minlength=num_groups * num_classes)
    return flat.reshape(num_groups, num_classes)
