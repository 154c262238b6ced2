"""Model complexity figures: parameter count and multiply-accumulate operations.

Both figures describe the deployable form (:func:`evaluators.models.prepare_for_export`), i.e. the
network that is exported and shipped: a MobileOne is counted reparameterized, not with its
train-time branches. The model passed in is never modified (BatchNorm statistics included).
"""

from __future__ import annotations

import torch
from torch import nn

from evaluators.models import prepare_for_export


def count_params(model: nn.Module) -> int:
    """Number of parameters of the deployable form of ``model``."""
    return sum(p.numel() for p in prepare_for_export(model).parameters())


def count_macs(model: nn.Module, resolution: int) -> int:
    """Multiply-accumulates of one forward pass of one ``3 x resolution x resolution`` image.

    Counted by ``torch_pruning.utils.count_ops_and_params`` on the deployable form.
    """
    import torch_pruning as tp

    deployable = prepare_for_export(model)
    with torch.no_grad():
        macs, _ = tp.utils.count_ops_and_params(deployable, torch.zeros(1, 3, resolution, resolution))
    return int(macs)
