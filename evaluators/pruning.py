"""Uniform structured channel pruning with torch-pruning.

The same fraction of channels is removed from every prunable layer group (``global_pruning=False``),
so the pruned shapes depend only on the architecture, the ratio and ``round_to``, never on weight
values: the untrained model pruned in step 2 of a trial (export, latency) and the trained model
pruned by importance in step 4 end up with identical shapes, hence the same graph fingerprint.

MobileOne is reparameterized (its train-time branches fused into single convolutions, as
:func:`evaluators.models.prepare_for_export` does) before pruning: the pruned model is the plain
deployable network, and fine-tuning continues on that form.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

ROUND_TO = 8
"""Pruned channel counts are multiples of this (SIMD-friendly; unpruned widths are too)."""

IMPORTANCES: tuple[str, ...] = ("magnitude", "l1", "bn_scale", "random")
"""Channel-importance criteria: L2 / L1 weight magnitude, BatchNorm scale, random."""


def _importance(name: str) -> object:
    import torch_pruning as tp

    factories = {
        "magnitude": lambda: tp.importance.MagnitudeImportance(p=2),
        "l1": lambda: tp.importance.MagnitudeImportance(p=1),
        "bn_scale": tp.importance.BNScaleImportance,
        "random": tp.importance.RandomImportance,
    }
    if name not in IMPORTANCES:
        raise ValueError(f"unknown importance {name!r}; known: {', '.join(IMPORTANCES)}")
    return factories[name]()


def prune_uniform(
    model: nn.Module, ratio: float, example_input: torch.Tensor, *, importance: str = "magnitude"
) -> nn.Module:
    """Remove ``ratio`` of the channels of every layer group, keeping the most important ones.

    Args:
        model: A model from :func:`evaluators.models.build_model` (trained or not). Not modified.
        ratio: Fraction of channels removed per layer group, ``0 <= ratio < 1``. Kept channel
            counts are rounded to multiples of :data:`ROUND_TO`.
        example_input: A batch of the model's input shape, used only to trace the layer
            dependencies (the model runs it in eval mode, so BatchNorm statistics are untouched).
        importance: One of :data:`IMPORTANCES`; it decides *which* channels go, never how many.

    Returns:
        A new pruned model (reparameterized first if it is a MobileOne) in the training mode
        ``model`` was in. The classifier keeps its outputs; its inputs shrink with the embedding.
        ``ratio == 0`` returns an unpruned, unfused copy equal to ``model``.

    Raises:
        ValueError: ``ratio`` out of range or unknown ``importance``.
    """
    import torch_pruning as tp
    from timm.utils import reparameterize_model

    if not 0 <= ratio < 1:
        raise ValueError(f"prune ratio {ratio} must be in [0, 1)")
    criterion = _importance(importance)
    if ratio == 0:
        return copy.deepcopy(model)
    was_training = model.training
    pruned = reparameterize_model(model, inplace=False).eval()
    pruner = tp.pruner.MetaPruner(
        pruned,
        example_input,
        importance=criterion,
        pruning_ratio=ratio,
        global_pruning=False,
        ignored_layers=[pruned.get_classifier()],
        round_to=ROUND_TO,
    )
    pruner.step()
    return pruned.train(was_training)
