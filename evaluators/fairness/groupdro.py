"""Online Group DRO (Sagawa et al. 2020, Algorithm 1): the loss of the groups, weighted towards the worst."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

DRO_STEP_SIZE = 0.01
"""Step size of the group weights' exponentiated-gradient update (Sagawa et al. use 0.01)."""


class GroupDRO:
    """Group weights ``q`` over the groups, updated online, that weight the batch loss.

    At every training step (one :meth:`batch_weights` call), with ``L_g`` the mean per-sample
    loss of group ``g`` in the batch:

    1. ``q_g <- q_g * exp(step_size * (L_g + C / sqrt(n_g)))`` for every group present in the
       batch, then the present groups are rescaled to their previous total, so **groups absent
       from the batch keep their weight** and ``q`` stays a distribution. ``C / sqrt(n_g)`` is
       Sagawa et al.'s optional group-size adjustment (``n_g`` training samples of the group;
       ``C = size_adjustment``, 0 by default).
    2. The batch loss is ``sum_g q_g * L_g / sum_g q_g`` over the present groups (each sample of
       group ``g`` weighs ``q_g / (n_g_batch * sum_present q)``); renormalising over the present
       groups keeps a batch that misses a group at the scale of the others.

    Invariants: ``q`` is positive and sums to 1 and starts uniform; a step raises a present
    group's weight exactly when its ``exp(step_size * adjusted loss)`` exceeds the q-weighted mean
    of that quantity over the present groups (the worst group's always rises), and leaves absent
    groups' weights unchanged.

    Args:
        num_groups: Groups of the data set.
        step_size: ``eta`` of the update.
        size_adjustment: ``C`` of the group-size adjustment (0 disables it).
        group_counts: Training samples per group; required when ``size_adjustment > 0``.

    Raises:
        ValueError: Fewer than two groups, a non-positive step size, a negative adjustment, or an
            adjustment without positive group counts.
    """

    method = "groupdro"

    def __init__(
        self, num_groups: int, *, step_size: float = DRO_STEP_SIZE, size_adjustment: float = 0.0,
        group_counts: np.ndarray | None = None,
    ) -> None:
        if num_groups < 2:
            raise ValueError(f"Group DRO needs two or more groups, got {num_groups}")
        if step_size <= 0 or size_adjustment < 0:
            raise ValueError(f"need step_size > 0 and size_adjustment >= 0, got {step_size}, {size_adjustment}")
        self.num_groups = num_groups
        self.step_size = step_size
        self.size_adjustment = size_adjustment
        self._adjustment = torch.zeros(num_groups, dtype=torch.float64)
        if size_adjustment > 0:
            counts = np.asarray(group_counts if group_counts is not None else [], dtype=np.float64)
            if counts.shape != (num_groups,) or np.any(counts <= 0):
                raise ValueError("size_adjustment needs a positive training count for every group")
            self._adjustment = torch.from_numpy(size_adjustment / np.sqrt(counts))
        self.q = torch.full((num_groups,), 1.0 / num_groups, dtype=torch.float64)
        self.steps = 0

    @property
    def weights(self) -> np.ndarray:
        """A copy of ``q``, float64, one weight per group."""
        return self.q.numpy().copy()

    def update(self, group_losses: torch.Tensor, present: torch.Tensor) -> None:
        """One exponentiated-gradient step on ``q`` (step 1 of the class docstring).

        Args:
            group_losses: ``(num_groups,)`` mean loss of each group in the batch (any value for
                absent groups).
            present: ``(num_groups,)`` bool, the groups with samples in the batch.
        """
        losses = group_losses.detach().to("cpu", torch.float64)
        present = present.to("cpu")
        if not bool(present.any()):
            return
        logits = torch.log(self.q[present]) + self.step_size * (losses[present] + self._adjustment[present])
        mass = self.q[present].sum()
        q = self.q.clone()
        q[present] = mass * torch.softmax(logits, dim=0)
        self.q = q / q.sum()
        self.steps += 1

    def batch_weights(self, losses: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Update ``q`` with this batch's group losses, then each sample's reduction weight.

        Args:
            losses: ``(B,)`` per-sample loss (detached inside).
            labels: ``(B,)`` class indices (unused: Group DRO weighs groups, not classes).
            groups: ``(B,)`` group indices.

        Returns:
            ``(B,)`` weights summing to 1, in ``losses``' dtype and device.
        """
        del labels
        losses = losses.detach().to(torch.float64)
        groups = groups.to(losses.device)
        counts = torch.bincount(groups, minlength=self.num_groups).to(torch.float64)
        if len(counts) > self.num_groups:
            raise ValueError(f"group index {int(groups.max())} out of range for {self.num_groups} groups")
        sums = torch.zeros(self.num_groups, dtype=torch.float64, device=losses.device).index_add_(0, groups, losses)
        present = counts > 0
        self.update(sums / counts.clamp(min=1), present)
        q = torch.where(present, self.q.to(losses.device), 0.0)
        per_group = q / (q.sum() * counts.clamp(min=1))
        return per_group[groups].to(losses.dtype)

    def state_dict(self) -> dict[str, Any]:
        """``q`` and the step count, for a checkpoint (JSON-safe)."""
        return {"q": self.q.tolist(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output.

        Raises:
            ValueError: When ``q`` has the wrong length or is not a distribution.
        """
        q = torch.tensor(state["q"], dtype=torch.float64)
        if q.shape != (self.num_groups,) or bool((q <= 0).any()) or not math.isclose(float(q.sum()), 1.0, abs_tol=1e-9):
            raise ValueError(f"q must be {self.num_groups} positive weights summing to 1, got {state['q']}")
        self.q = q
        self.steps = int(state["steps"])
