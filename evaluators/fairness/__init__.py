"""Group-aware training methods: the searched ``fairness_method`` dimension, as small components.

One registry (:data:`METHOD_BUILDERS`) maps each name of
:data:`spaces.candidate.FAIRNESS_METHODS` to what training needs: a ``sampler`` for
``iterate_batches(sampler=...)`` and/or a ``weighting`` for ``train(group_weighting=...)``.

- ``none``: neither; batches and loss exactly as without this package.
- ``balanced_sampler``: :class:`BalancedSampler` (group x class balanced, with replacement); mean loss.
- ``reweight``: shuffled split; :class:`InverseFrequencyWeighting` of the per-sample loss.
- ``groupdro``: shuffled split; :class:`GroupDRO` weights over the groups (step size 0.01).

Every method but ``none`` needs two or more groups in the training split. The methods change
training only: the shipped model, its graph and its latency are the same for every method, and
nothing needs the group at inference.

Use :func:`fairness_training` once per candidate and give its ``sampler`` to the batches and its
``weighting`` to every ``train`` call of that candidate (training and the fine-tune after
pruning), so that Group DRO's weights carry on through the fine-tune.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from evaluators.fairness.cells import FairnessMethodError, label_arrays, require_groups
from evaluators.fairness.groupdro import DRO_STEP_SIZE, GroupDRO
from evaluators.fairness.reweight import (
    InverseFrequencyWeighting,
    inverse_frequency_table,
    inverse_frequency_weights,
)
from evaluators.fairness.sampler import BalancedSampler
from evaluators.losses import SampleWeighting
from spaces.candidate import FAIRNESS_METHODS

__all__ = [
    "DRO_STEP_SIZE", "FAIRNESS_METHODS", "BalancedSampler", "FairTraining", "FairnessMethodError",
    "GroupDRO", "InverseFrequencyWeighting", "METHOD_BUILDERS", "check_method", "fairness_training",
    "inverse_frequency_table", "inverse_frequency_weights",
]


@dataclass(frozen=True)
class FairTraining:
    """What one candidate's training uses for its fairness method.

    Attributes:
        method: The method's name.
        sampler: ``seed -> indices`` of an epoch's samples, or ``None`` for the plain shuffle.
        weighting: Per-batch reduction weights of the loss, or ``None`` for the plain mean. May
            be stateful (Group DRO): share it between the calls of one candidate only.
    """

    method: str
    sampler: Callable[[int], np.ndarray] | None = None
    weighting: SampleWeighting | None = None


def check_method(name: str) -> str:
    """``name`` when it is a known fairness method.

    Raises:
        FairnessMethodError: Listing the known methods.
    """
    if name not in FAIRNESS_METHODS:
        raise FairnessMethodError(
            f"unknown fairness method {name!r}; known methods: {', '.join(FAIRNESS_METHODS)}"
        )
    return name


def _balanced_sampler(labels: np.ndarray, groups: np.ndarray, num_groups: int, num_classes: int,
                      dro_step_size: float) -> FairTraining:
    return FairTraining("balanced_sampler", sampler=BalancedSampler(labels, groups))


def _reweight(labels: np.ndarray, groups: np.ndarray, num_groups: int, num_classes: int,
              dro_step_size: float) -> FairTraining:
    weighting = InverseFrequencyWeighting(labels, groups, num_groups=num_groups, num_classes=num_classes)
    return FairTraining("reweight", weighting=weighting)


def _groupdro(labels: np.ndarray, groups: np.ndarray, num_groups: int, num_classes: int,
              dro_step_size: float) -> FairTraining:
    return FairTraining("groupdro", weighting=GroupDRO(num_groups, step_size=dro_step_size))


METHOD_BUILDERS: dict[str, Callable[[np.ndarray, np.ndarray, int, int, float], FairTraining]] = {
    "balanced_sampler": _balanced_sampler,
    "reweight": _reweight,
    "groupdro": _groupdro,
}
"""Builder of every method but ``none``: ``(labels, groups, num_groups, num_classes, eta)``.
Its keys plus ``none`` are exactly :data:`FAIRNESS_METHODS` (a test checks it)."""


def fairness_training(
    method: str, labels: np.ndarray, groups: np.ndarray, *, num_groups: int | None = None,
    num_classes: int | None = None, dro_step_size: float = DRO_STEP_SIZE,
) -> FairTraining:
    """The components of ``method`` for a training split.

    Args:
        method: One of :data:`FAIRNESS_METHODS`.
        labels: Class index of each training sample.
        groups: Group index of each training sample.
        num_groups: Groups of the data set (default: the largest index + 1).
        num_classes: Classes of the data set (default: the largest index + 1).
        dro_step_size: Step size of Group DRO's weights.

    Raises:
        FairnessMethodError: Unknown method (listing the known ones), bad arrays, or a method
            that needs groups on a split with fewer than two.
    """
    check_method(method)
    if method == "none":
        return FairTraining(method)
    labels_a, groups_a = label_arrays(labels, groups)
    require_groups(groups_a, method)
    return METHOD_BUILDERS[method](
        labels_a, groups_a, num_groups or int(groups_a.max()) + 1, num_classes or int(labels_a.max()) + 1,
        dro_step_size,
    )
