"""Group x class balanced sampling of the training batches (numpy only)."""

from __future__ import annotations

import numpy as np

from evaluators.fairness.cells import label_arrays, require_groups


class BalancedSampler:
    """Seeded index sampler that draws every non-empty group x class cell equally often.

    One draw picks a cell uniformly among the non-empty cells of the split, then a sample of that
    cell uniformly; draws are independent (with replacement), so minority cells repeat and
    majority samples may be skipped in an epoch. Cells empty in the split are never drawn (their
    group's other cells then carry the group).

    Invariants: ``sampler(seed)`` has ``num_samples`` indices into the split (default: its length,
    so an epoch keeps its number of steps), depends only on ``seed``, and every cell's expected
    share is ``1 / number_of_non_empty_cells``.

    Args:
        labels: Class index of each sample of the split.
        groups: Group index of each sample.
        num_samples: Indices per call (default ``len(labels)``).

    Raises:
        FairnessMethodError: Bad label/group arrays, or fewer than two groups.
    """

    method = "balanced_sampler"

    def __init__(self, labels: np.ndarray, groups: np.ndarray, num_samples: int | None = None) -> None:
        labels_a, groups_a = label_arrays(labels, groups)
        require_groups(groups_a, self.method)
        self.num_samples = len(labels_a) if num_samples is None else int(num_samples)
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {self.num_samples}")
        cells = groups_a * (int(labels_a.max()) + 1) + labels_a
        self._by_cell = np.argsort(cells, kind="stable")
        _, self._starts, self._sizes = np.unique(cells[self._by_cell], return_index=True, return_counts=True)

    @property
    def num_cells(self) -> int:
        """Number of non-empty group x class cells."""
        return len(self._sizes)

    def __call__(self, seed: int) -> np.ndarray:
        """``num_samples`` int64 indices into the split, drawn for ``seed``."""
        rng = np.random.default_rng(seed)
        cell = rng.integers(self.num_cells, size=self.num_samples)
        offset = rng.integers(0, self._sizes[cell])
        return self._by_cell[self._starts[cell] + offset]
