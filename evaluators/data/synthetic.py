"""The embedded data sets: generated dermatology-like PNGs in the layouts real users have.

* ``esfair``: ``generate_esfair`` writes ``ROOT/{train,val,test}/<group>/<class>/<split>_<index>.png``
  (the grouped layout); the pictures come from :func:`evaluators.data.lesions.render_lesion` (see
  it for what separates the classes and why the ``dark`` group is harder).
* ``lpirc``: ``generate_lpirc`` writes the same kind of pictures without groups, in the plain
  ImageFolder layout ``ROOT/{train,val,test}/<class>/<split>_<index>.png`` (skin tones mixed, no
  group recorded), smaller and at 128 px so an accuracy-latency search on it is quick.

``ensure_embedded`` generates a set once into a cache folder and reuses it afterwards.

Determinism: every image is drawn from its own generator seeded by ``(seed, split, index)``, and
the class/group assignment of a split from a generator seeded by ``(seed, split)``, so the same
arguments give byte-identical files on any machine with the same numpy, Pillow and zlib
(:mod:`evaluators.data.png` writes no timestamps). The default set (2000 images, 224 px) takes
about 15 s on one core and 145 MB on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from evaluators.data.lesions import CLASSES, GROUP_SHARES, GROUPS, render_lesion
from evaluators.data.png import write_png
from evaluators.data.sources import SPLITS
from evaluators.errors import DataError

DEFAULT_COUNTS: dict[str, int] = {"train": 1200, "val": 400, "test": 400}
LPIRC_COUNTS: dict[str, int] = {"train": 600, "val": 200, "test": 200}
GENERATOR_VERSION = 1
"""Bumped whenever the pictures change; part of the cache folder name."""
MARKER = ".hwsearch-embedded.json"
"""Written last into a complete generated folder; records the generation parameters."""
_STALE_TEMP_S = 3600.0


def _validated_counts(counts: Mapping[str, int] | None, default: Mapping[str, int] = DEFAULT_COUNTS) -> dict[str, int]:
    """Counts per split, defaulting to ``default``; every split needs one or more."""
    if counts is None:
        return dict(default)
    if set(counts) != set(SPLITS) or any(int(n) < 1 for n in counts.values()):
        raise ValueError(f"counts needs a positive count for each of {SPLITS}, got {dict(counts)}")
    return {split: int(counts[split]) for split in SPLITS}


def _prepared(root: Path, counts: Mapping[str, int] | None, default: Mapping[str, int], size: int) -> dict[str, int]:
    """The counts per split, after checking ``size`` and that ``root`` is new or empty.

    Raises:
        DataError: ``root`` exists and is not an empty folder.
        ValueError: A bad ``counts`` or ``size``.
    """
    per_split = _validated_counts(counts, default)
    if size < 8:
        raise ValueError(f"size must be at least 8 px, got {size}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root} is not an empty folder", "generate into a new or empty folder")
    return per_split


def _shares_to_counts(total: int) -> dict[str, int]:
    """Split ``total`` images over the groups by :data:`GROUP_SHARES` (largest remainder)."""
    exact = {g: total * GROUP_SHARES[g] for g in GROUPS}
    counts = {g: int(exact[g]) for g in GROUPS}
    by_remainder = sorted(GROUPS, key=lambda g: (-(exact[g] - counts[g]), GROUPS.index(g)))
    for g in by_remainder[: total - sum(counts.values())]:
        counts[g] += 1
    return counts


def _assignments(seed: int, split_index: int, total: int) -> list[tuple[str, str]]:
    """``(group, class)`` of each image of a split: exact group shares, classes balanced per group."""
    pairs = [
        (group, CLASSES[i % len(CLASSES)])
        for group, n in _shares_to_counts(total).items()
        for i in range(n)
    ]
    order = np.random.default_rng([seed, split_index, 0x5EED]).permutation(len(pairs))
    return [pairs[i] for i in order]


def generate_esfair(
    root: Path, *, seed: int = 0, size: int = 224, counts: Mapping[str, int] | None = None
) -> Path:
    """Write the synthetic dermatology-like data set into ``root``.

    Layout: ``root/{train,val,test}/<group>/<class>/<split>_<index:05d>.png``, RGB, ``size`` px
    square. Groups are ``light`` (50 %), ``medium`` (38 %) and ``dark`` (12 %, the minority,
    lower lesion contrast) in every split; within a group the four classes are balanced (they
    differ by at most one image).

    Args:
        root: Folder to write into; created if missing, must be empty if present.
        seed: Seed of everything random; the same arguments give byte-identical files.
        size: Image side in pixels (224 native; smaller sizes render the same scenes coarser).
        counts: Images per split, keys ``train``, ``val``, ``test``; default
            :data:`DEFAULT_COUNTS`.

    Returns:
        ``root``.

    Raises:
        DataError: When ``root`` exists and is not an empty folder.
        ValueError: For a bad ``counts`` or ``size``.
    """
    root = Path(root)
    per_split = _prepared(root, counts, DEFAULT_COUNTS, size)
    for split_index, split in enumerate(SPLITS):
        for group in GROUPS:
            for lesion_class in CLASSES:
                (root / split / group / lesion_class).mkdir(parents=True, exist_ok=True)
        for index, (group, lesion_class) in enumerate(_assignments(seed, split_index, per_split[split])):
            rng = np.random.default_rng([seed, split_index, index])
            pixels = render_lesion(rng, lesion_class, group, size).image
            path = root / split / group / lesion_class / f"{split}_{index:05d}.png"
            write_png(path, pixels)
    return root


def generate_lpirc(
    root: Path, *, seed: int = 0, size: int = 128, counts: Mapping[str, int] | None = None
) -> Path:
    """Write the ungrouped data set into ``root``: ``root/{train,val,test}/<class>/<split>_<index:05d>.png``.

    The same scenes as :func:`generate_esfair` (skin tones drawn with its shares, but not
    recorded), classes balanced within each skin tone. Arguments and errors as :func:`generate_esfair`, default counts
    :data:`LPIRC_COUNTS`.
    """
    root = Path(root)
    per_split = _prepared(root, counts, LPIRC_COUNTS, size)
    for split_index, split in enumerate(SPLITS):
        for lesion_class in CLASSES:
            (root / split / lesion_class).mkdir(parents=True, exist_ok=True)
        for index, (group, lesion_class) in enumerate(_assignments(seed + 7, split_index, per_split[split])):
            rng = np.random.default_rng([seed + 7, split_index, index])
            write_png(root / split / lesion_class / f"{split}_{index:05d}.png",
                      render_lesion(rng, lesion_class, group, size).image)
    return root


@dataclass(frozen=True)
class EmbeddedSpec:
    """An embedded data set: its generator and default size and counts."""

    generate: Callable[..., Path]
    size: int
    counts: Mapping[str, int]


EMBEDDED: dict[str, EmbeddedSpec] = {
    "esfair": EmbeddedSpec(generate_esfair, 224, DEFAULT_COUNTS),
    "lpirc": EmbeddedSpec(generate_lpirc, 128, LPIRC_COUNTS),
}
"""Embedded data sets by name: ``generate(root, *, seed, size, counts) -> root``."""


def embedded_folder_name(name: str, *, seed: int, size: int, counts: Mapping[str, int]) -> str:
    """Cache folder name: ``<name>-v<version>-seed<seed>-<size>px-<hash of counts>``."""
    digest = hashlib.sha256(json.dumps(dict(sorted(counts.items()))).encode()).hexdigest()[:10]
    return f"{name}-v{GENERATOR_VERSION}-seed{seed}-{size}px-{digest}"


def _read_marker(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _remove_stale_temps(cache_root: Path, folder_name: str) -> None:
    """Delete temp folders of ``folder_name`` left by crashed runs (older than an hour)."""
    for temp in cache_root.glob(f".{folder_name}.tmp-*"):
        try:
            if time.time() - temp.stat().st_mtime > _STALE_TEMP_S:
                shutil.rmtree(temp, ignore_errors=True)
        except OSError:
            continue


def ensure_embedded(
    cache_root: Path, name: str = "esfair", *, seed: int = 0, size: int | None = None,
    counts: Mapping[str, int] | None = None,
) -> Path:
    """Generate the embedded data set ``name`` once under ``cache_root`` and return its folder.

    The folder is ``cache_root/<name>-v1-seed<seed>-<size>px-<hash of counts>``. It is complete
    exactly when it holds the marker file (:data:`MARKER`, written last, recording the
    parameters); a folder without a matching marker (a crash, a manual edit) is regenerated.
    Writing goes to a temporary sibling folder renamed into place at the end, so concurrent
    processes are safe: the first rename wins and the others discard their copy.

    Args:
        cache_root: Folder holding generated data sets (created if missing).
        name: Embedded data set name (one of :data:`EMBEDDED`).
        seed: Generation seed.
        size: Image side in pixels (default: the set's own).
        counts: Images per split (default: the set's own).

    Returns:
        The complete data set folder.

    Raises:
        DataError: For an unknown ``name`` or a cache folder that cannot be written.
    """
    if name not in EMBEDDED:
        raise DataError(
            f"unknown embedded data set {name!r}",
            f"use one of: {', '.join('embedded:' + n for n in sorted(EMBEDDED))}, or a folder or CSV path",
        )
    spec = EMBEDDED[name]
    size = spec.size if size is None else size
    cache_root = Path(cache_root)
    per_split = _validated_counts(counts, spec.counts)
    folder_name = embedded_folder_name(name, seed=seed, size=size, counts=per_split)
    target = cache_root / folder_name
    expected = {"name": name, "version": GENERATOR_VERSION, "seed": seed, "size": size, "counts": per_split}
    if _read_marker(target) == expected:
        return target
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(cache_root, folder_name)
        temp = cache_root / f".{folder_name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            spec.generate(temp, seed=seed, size=size, counts=per_split)
            (temp / MARKER).write_text(json.dumps(expected, indent=1))
            _publish(temp, target, expected)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    except OSError as exc:
        raise DataError(
            f"cannot write the embedded data set into {cache_root}: {exc}",
            "pass a writable cache folder",
        ) from exc
    return target


def _publish(temp: Path, target: Path, expected: Mapping[str, object]) -> None:
    """Rename ``temp`` to ``target``; if another process got there first with a complete copy, keep
    theirs. An incomplete ``target`` (no matching marker) is removed and replaced."""
    for _ in range(3):
        try:
            os.rename(temp, target)
            return
        except OSError:
            if _read_marker(target) == expected:
                return
            shutil.rmtree(target, ignore_errors=True)
    os.rename(temp, target)
