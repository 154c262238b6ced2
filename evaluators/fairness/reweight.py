"""Loss weights inversely proportional to the frequency of a sample's group x class cell."""

from __future__ import annotations

import numpy as np
import torch

from evaluators.fairness.cells import cell_counts, label_arrays, require_groups


def inverse_frequency_table(
    labels: np.ndarray, groups: np.ndarray, *, num_groups: int | None = None, num_classes: int | None = None,
) -> np.ndarray:
    """``(num_groups, num_classes)`` float64 weight of each group x class cell.

    A non-empty cell with ``n_c`` of the split's ``N`` samples weighs ``N / (K * n_c)`` (``K``
    non-empty cells); empty cells weigh 0. So every cell carries the same total weight, and the
    per-sample weights have mean exactly 1 over the split.

    Args:
        labels: Class index of each training sample.
        groups: Group index of each training sample.
        num_groups: Groups of the data set (default: the largest index + 1).
        num_classes: Classes of the data set (default: the largest index + 1).

    Raises:
        FairnessMethodError: Bad arrays, indices out of range, or fewer than two groups.
    """
    labels_a, groups_a = label_arrays(labels, groups)
    require_groups(groups_a, "reweight")
    counts = cell_counts(
        labels_a, groups_a, num_groups or int(groups_a.max()) + 1, num_classes or int(labels_a.max()) + 1
    ).astype(np.float64)
    non_empty = counts > 0
    table = np.zeros_like(counts)
    table[non_empty] = len(labels_a) / (non_empty.sum() * counts[non_empty])
    return table


def inverse_frequency_weights(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-sample weights ``proportional to 1 / freq(group, class)``, mean 1 over the given split."""
    labels_a, groups_a = label_arrays(labels, groups)
    return inverse_frequency_table(labels_a, groups_a)[groups_a, labels_a]


class InverseFrequencyWeighting:
    """The ``reweight`` method as a :class:`~evaluators.losses.SampleWeighting`.

    A batch's loss is ``sum_i w(g_i, y_i) * loss_i / B``: the weighted mean with the
    :func:`inverse_frequency_table` weights of the training split (not renormalised per batch,
    so its expectation over batches is the reweighted training loss). Stateless.

    Args:
        labels: Class index of each training sample.
        groups: Group index of each training sample.
        num_groups: Groups of the data set (default: the largest index + 1).
        num_classes: Classes of the data set (default: the largest index + 1).
    """

    method = "reweight"

    def __init__(
        self, labels: np.ndarray, groups: np.ndarray, *, num_groups: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.table = torch.from_numpy(
            inverse_frequency_table(labels, groups, num_groups=num_groups, num_classes=num_classes)
        )

    def batch_weights(self, losses: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """``w(g_i, y_i) / B`` for each sample of the batch, in ``losses``' dtype and device."""
        table = self.table.to(losses.device)
        return (table[groups, labels] / len(losses)).to(losses.dtype)
