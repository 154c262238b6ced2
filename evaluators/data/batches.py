"""Mini-batches of a split as torch tensors (torch is imported only when iterating)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from evaluators.data.dataset import Split

if TYPE_CHECKING:
    import torch


def iterate_batches(
    split: Split, resolution: int, batch_size: int, *, shuffle: bool, augment: bool, seed: int,
    drop_last: bool = False, sampler: Callable[[int], np.ndarray] | None = None,
) -> Iterator[tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]]:
    """Yield ``(x, y, g)`` batches: float32 ``(B, 3, R, R)`` inputs, int64 labels, int64 groups.

    Inputs are THE preprocessing of each image: the split's cached pixels
    (:meth:`Split.pixels`, decoded once per resolution) normalised per batch, bit-for-bit equal to
    :meth:`Split.arrays` rows. Augmentation is a random
    horizontal and an independent random vertical flip per image (each with probability 1/2),
    done on the batch tensor. The order and the flips depend only on ``seed``; without a
    ``sampler`` every image appears once per pass.

    Args:
        split: The split to read.
        resolution: Model input side in pixels.
        batch_size: Images per batch (the last batch may be smaller).
        shuffle: Visit the images in a seeded random order instead of split order.
        augment: Apply the random flips.
        seed: Seed of the order and the flips.
        drop_last: Skip a last batch smaller than ``batch_size`` (useful with batch norm).
        sampler: ``seed -> indices`` of the images to visit, in order, repeats allowed (e.g.
            ``evaluators.fairness.BalancedSampler``); it replaces ``shuffle``'s order. ``None``
            keeps the split's order or its seeded shuffle, unchanged.

    Raises:
        ValueError: When ``batch_size`` is not positive, or the sampler's indices are not
            one-dimensional integers within the split.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    from evaluators.data.preprocess import normalise

    pixels = split.pixels(resolution)
    if sampler is not None:
        order = _checked_order(sampler(seed), len(split))
    else:
        order = np.random.default_rng(seed).permutation(len(split)) if shuffle else np.arange(len(split))
    flips = torch.Generator().manual_seed(seed)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        if drop_last and len(index) < batch_size:
            return
        x = torch.from_numpy(normalise(pixels[index]))
        if augment:
            flip = torch.rand((len(index), 2), generator=flips) < 0.5
            x = torch.where(flip[:, 0, None, None, None], x.flip(-1), x)
            x = torch.where(flip[:, 1, None, None, None], x.flip(-2), x)
        yield x, torch.from_numpy(split.labels[index]), torch.from_numpy(split.groups[index])


def _checked_order(order: np.ndarray, size: int) -> np.ndarray:
    """``order`` as int64 indices, after checking it is 1-D integers in ``[0, size)``."""
    array = np.asarray(order)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"a sampler must return 1-D integer indices, got {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ValueError(f"sampler indices {array.min()}..{array.max()} fall outside the split's 0..{size - 1}")
    return array.astype(np.int64)
