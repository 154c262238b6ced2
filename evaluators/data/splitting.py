"""Seeded train/val/test split stratified by class x group.

Rules (``records`` come from :mod:`evaluators.data.sources`):

* No record has a split: all of them are divided into train, val and test with ``val_fraction``
  and ``test_fraction`` of every class x group stratum.
* Some records have a split: those keep it; a missing ``val`` or ``test`` is carved out of the
  training records the same way (its fraction of each training stratum). A source without
  training records is an error.

A carved split gets ``round(fraction * pool size)`` images, shared among the strata by largest
remainder, except that every stratum with at least ``1 + number of carved splits`` images gets at
least one image in each split ("keeps every class x group where possible"; small strata can push a
split slightly over its share). Smaller strata keep one image in train and deal the rest to the
carved splits in turn. The result depends only on the records (sorted by
path) and ``seed``, never on file-system order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import numpy as np

from evaluators.data.sources import SPLITS, Record
from evaluators.errors import DataError


def _validate_fractions(names: Sequence[str], fractions: Sequence[float]) -> None:
    """The fractions of the splits to make must each be in (0, 1) and sum below 1."""
    if not all(0.0 < f < 1.0 for f in fractions) or sum(fractions) >= 1.0:
        given = ", ".join(f"{name}_fraction={f}" for name, f in zip(names, fractions))
        raise DataError(
            f"{given} cannot make the missing split(s)",
            "use fractions above 0 whose sum is below 1 (default 0.15 each)",
        )


def _deal(n: int, splits: int, turn: int) -> list[int]:
    """A stratum too small for every split: one image stays in train, the rest go round in turn."""
    quotas = [0] * splits
    for i in range(max(n - 1, 0)):
        quotas[(turn + i) % splits] += 1
    return quotas


def _allocate(sizes: Sequence[int], fraction: float, rng: np.random.Generator) -> list[int]:
    """Images of each stratum for one carved split: ``round(fraction * sum(sizes))`` in all,
    at least one per stratum, by largest remainder (seeded tie-break)."""
    exact = [n * fraction for n in sizes]
    quotas = [max(1, math.floor(e)) for e in exact]
    tiebreak = rng.random(len(sizes))
    order = sorted(range(len(sizes)), key=lambda i: (math.floor(exact[i]) - exact[i], tiebreak[i]))
    for i in order[: math.floor(sum(exact) + 0.5) - sum(quotas)]:
        quotas[i] += 1
    return quotas


def _quotas(
    sizes: Sequence[int], fractions: Sequence[float], rng: np.random.Generator
) -> list[list[int]]:
    """Per stratum, the images of each carved split; train keeps the rest, always one or more."""
    carved = len(fractions)
    large = [i for i, n in enumerate(sizes) if n >= carved + 1]
    quotas = [_deal(n, carved, turn) for turn, n in enumerate(sizes)]
    per_split = [_allocate([sizes[i] for i in large], f, rng) for f in fractions]
    for j, i in enumerate(large):
        row = [per_split[k][j] for k in range(carved)]
        while sum(row) > sizes[i] - 1:
            row[row.index(max(row))] -= 1
        quotas[i] = row
    return quotas


def _carve(
    pool: Sequence[Record], carved: Sequence[str], fractions: Sequence[float], seed: int
) -> dict[str, list[Record]]:
    """Stratified random division of ``pool`` into train and the ``carved`` splits."""
    _validate_fractions(carved, fractions)
    strata: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in sorted(pool, key=lambda r: str(r.path)):
        strata[(record.label, record.group)].append(record)
    keys = sorted(strata)
    rng = np.random.default_rng(seed)
    quotas = _quotas([len(strata[k]) for k in keys], fractions, rng)
    out: dict[str, list[Record]] = {name: [] for name in ("train", *carved)}
    for key, stratum_quotas in zip(keys, quotas):
        members = strata[key]
        order = rng.permutation(len(members))
        start = 0
        for name, quota in zip(carved, stratum_quotas):
            out[name].extend(members[i] for i in order[start:start + quota])
            start += quota
        out["train"].extend(members[i] for i in order[start:])
    return out


def assign_splits(
    records: Sequence[Record], *, seed: int, val_fraction: float, test_fraction: float, source: str
) -> dict[str, list[Record]]:
    """Train, val and test records (each sorted by path), making missing splits as described above.

    Args:
        records: All records of the source.
        seed: Seed of the random division.
        val_fraction: Share of each stratum given to a made ``val`` split.
        test_fraction: Share of each stratum given to a made ``test`` split.
        source: Name of the source, for messages.

    Raises:
        DataError: For unusable fractions of splits to make, no training records, or a split
            that ends up empty.
    """
    fraction = {"val": val_fraction, "test": test_fraction}
    given: dict[str, list[Record]] = {name: [r for r in records if r.split == name] for name in SPLITS}
    if all(r.split is None for r in records):
        splits = _carve(records, ("val", "test"), (val_fraction, test_fraction), seed)
    elif any(r.split is None for r in records):
        raise DataError(f"{source} gives a split for some images only", "give every image a split, or none")
    elif not given["train"]:
        raise DataError(
            f"{source} has no training images (only {', '.join(n for n in SPLITS if given[n])})",
            "add a train split, or give no splits at all to have them made",
        )
    else:
        missing = tuple(name for name in ("val", "test") if not given[name])
        splits = dict(given)
        if missing:
            splits.update(_carve(given["train"], missing, [fraction[m] for m in missing], seed))
    for name in SPLITS:
        if not splits[name]:
            raise DataError(
                f"the {name} split of {source} is empty ({len(records)} images in all)",
                "add images (with three or more per class and group every made split gets some)",
            )
    return {name: sorted(splits[name], key=lambda r: str(r.path)) for name in SPLITS}
