"""``load_dataset``: from a data spec to an in-memory :class:`ImageDataset`.

A spec is one of:

* ``"embedded:<name>"``: a generated data set (``embedded:esfair``), made once under
  ``cache_root`` by :func:`evaluators.data.synthetic.ensure_embedded` and reused afterwards;
* a folder in the grouped layout ``ROOT/[train|val|test/]<group>/<class>/<image>``;
* a CSV manifest ``path,label,group[,split]``.

Missing splits are made by a seeded split stratified by class x group
(:mod:`evaluators.data.splitting`). Images are decoded once and kept in memory as RGB, shrunk with
Pillow's bilinear filter so that the longest side is at most ``max_side`` (aspect ratio kept;
smaller images are left as they are). Nothing is ever written into the user's data folder.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from evaluators.data.dataset import ImageDataset, Split
from evaluators.data.sources import SPLITS, Record, read_manifest, scan_folder
from evaluators.data.splitting import assign_splits
from evaluators.data.synthetic import ensure_embedded
from evaluators.errors import DataError

EMBEDDED_PREFIX = "embedded:"
_DECODE_THREADS = min(4, os.cpu_count() or 1)


def decode_image(path: Path, max_side: int) -> Image.Image:
    """Read ``path`` as an RGB image whose longest side is at most ``max_side``.

    Raises:
        DataError: When the file cannot be read or is not a valid image (names the file).
    """
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image {path}: {exc}", "replace the file with a valid image or remove it"
        ) from exc
    longest = max(image.size)
    if longest > max_side:
        scale = max_side / longest
        shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(shape, Image.BILINEAR)
    return image


def _records(
    spec: str | Path, *, cache_root: Path, embedded_seed: int, embedded_size: int,
    embedded_counts: Mapping[str, int] | None,
) -> tuple[str, list[Record]]:
    """The source description and its records."""
    text = str(spec)
    if text.startswith(EMBEDDED_PREFIX):
        name = text[len(EMBEDDED_PREFIX):]
        root = ensure_embedded(cache_root, name, seed=embedded_seed, size=embedded_size, counts=embedded_counts)
        return f"{text} ({root})", scan_folder(root)
    path = Path(spec).expanduser()
    if path.is_dir():
        records = scan_folder(path)
    elif path.is_file() and path.suffix.lower() == ".csv":
        records = read_manifest(path)
    elif path.exists():
        raise DataError(f"{path} is neither a folder nor a .csv manifest", "pass a data folder or a CSV file")
    else:
        raise DataError(
            f"data {path} does not exist",
            f"pass an existing folder or CSV manifest, or {EMBEDDED_PREFIX}esfair for the built-in data",
        )
    return str(path), records


def _split(
    name: str, records: Sequence[Record], class_index: Mapping[str, int],
    group_index: Mapping[str, int], max_side: int,
) -> Split:
    paths = [r.path for r in records]
    with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
        images = list(pool.map(lambda p: decode_image(p, max_side), paths))
    labels = np.array([class_index[r.label] for r in records], dtype=np.int64)
    groups = np.array([group_index[r.group] for r in records], dtype=np.int64)
    return Split(name, paths, images, labels, groups)


def load_dataset(
    spec: str | Path, *, cache_root: Path, seed: int = 0, val_fraction: float = 0.15,
    test_fraction: float = 0.15, max_side: int = 256, embedded_counts: Mapping[str, int] | None = None,
    embedded_seed: int = 0, embedded_size: int = 224,
) -> ImageDataset:
    """Load a data set into memory with train, val and test splits.

    Args:
        spec: ``"embedded:esfair"``, a grouped image folder, or a CSV manifest (see module doc).
        cache_root: Where embedded data sets are generated and kept (unused otherwise).
        seed: Seed of the stratified split that makes missing splits.
        val_fraction: Share of each class x group stratum put in a made ``val`` split.
        test_fraction: Share of each class x group stratum put in a made ``test`` split.
        max_side: Longest side of the images kept in memory (larger ones are shrunk).
        embedded_counts: Images per split of an embedded set (default: the generator's).
        embedded_seed: Generation seed of an embedded set. Kept apart from ``seed`` so the
            embedded data stays the same across studies with different seeds.
        embedded_size: Image side of an embedded set, in pixels.

    Returns:
        The data set; class and group names are sorted.

    Raises:
        DataError: For a missing path, an unknown embedded name, a malformed layout or manifest,
            a single class, an empty group, an unreadable image, or a split that ends up empty.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    source, records = _records(
        spec, cache_root=Path(cache_root), embedded_seed=embedded_seed, embedded_size=embedded_size,
        embedded_counts=embedded_counts,
    )
    class_names = sorted({r.label for r in records})
    if len(class_names) < 2:
        raise DataError(
            f"{source} has a single class ({class_names[0]}); a classifier needs at least two",
            "add the other classes' folders (or rows)",
        )
    group_names = sorted({r.group for r in records})
    by_split = assign_splits(
        records, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, source=source
    )
    class_index = {name: i for i, name in enumerate(class_names)}
    group_index = {name: i for i, name in enumerate(group_names)}
    splits = {
        name: _split(name, by_split[name], class_index, group_index, max_side) for name in SPLITS
    }
    return ImageDataset(class_names, group_names, splits, source)
