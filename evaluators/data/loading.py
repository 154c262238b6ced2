"""``load_dataset``: from a data spec to an :class:`ImageDataset`.

A spec is one of:

* ``"embedded:<name>"``: a generated data set (``embedded:esfair``, ``embedded:lpirc``), made once
  under ``cache_root`` by :func:`evaluators.data.synthetic.ensure_embedded` and reused afterwards;
* a folder in the grouped layout ``ROOT/[train|val|test/]<group>/<class>/<image>`` or the plain
  ImageFolder layout ``ROOT/[train|val|test/]<class>/<image>`` (no groups);
* a CSV manifest ``path,label[,group][,split]``.

Missing splits are made by a seeded split stratified by class (x group when there are groups)
(:mod:`evaluators.data.splitting`). Every image is decoded once at load to check it (a corrupt
file fails here, naming it, not in the middle of a search); the check is remembered per data
fingerprint under ``cache_root``. Pixels are produced per split and resolution on first use and
cached there too (:class:`evaluators.data.dataset.Split`). Nothing is ever written into the
user's data folder.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from evaluators.data.dataset import _DECODE_THREADS, UNGROUPED, ImageDataset, Split
from evaluators.data.sources import SPLITS, Record, read_manifest, scan_folder
from evaluators.data.splitting import assign_splits
from evaluators.data.synthetic import EMBEDDED, ensure_embedded
from evaluators.errors import DataError

EMBEDDED_PREFIX = "embedded:"
CHECK_FORMAT = 1


def open_rgb(path: Path) -> Image.Image:
    """Read ``path`` fully as an RGB image (THE preprocessing's first step).

    Raises:
        DataError: When the file cannot be read or is not a valid image (names the file).
    """
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image {path}: {exc}", "replace the file with a valid image or remove it"
        ) from exc


def _records(
    spec: str | Path, *, cache_root: Path, embedded_seed: int, embedded_size: int | None,
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
        known = ", ".join(EMBEDDED_PREFIX + n for n in sorted(EMBEDDED))
        raise DataError(
            f"data {path} does not exist",
            f"pass an existing folder or CSV manifest, or one of the built-in sets ({known})",
        )
    return str(path), records


def _with_groups(records: list[Record], source: str) -> tuple[list[Record], bool]:
    """Records with a group each (:data:`UNGROUPED` for data without groups) and whether the data has groups."""
    grouped = {r.group is not None for r in records}
    if len(grouped) > 1:
        raise DataError(f"{source} gives a group for some images only", "give every image a group, or none")
    if grouped == {True}:
        return records, True
    return [Record(r.path, r.label, UNGROUPED, r.split) for r in records], False


def _check_images(paths: Sequence[Path], record: Path) -> int:
    """Decode every image once (unless ``record`` says this data was checked); the smallest side."""
    try:
        stored = json.loads(record.read_text())
        if stored.get("format") == CHECK_FORMAT and stored.get("images") == len(paths):
            return int(stored["min_side"])
    except (OSError, ValueError, KeyError, TypeError):
        pass

    def side(path: Path) -> int:
        return min(open_rgb(path).size)

    with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
        min_side = min(pool.map(side, paths))
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"format": CHECK_FORMAT, "images": len(paths), "min_side": min_side}))
    return min_side


def load_dataset(
    spec: str | Path, *, cache_root: Path, seed: int = 0, val_fraction: float = 0.15,
    test_fraction: float = 0.15, embedded_counts: Mapping[str, int] | None = None,
    embedded_seed: int = 0, embedded_size: int | None = None,
) -> ImageDataset:
    """Load a data set with train, val and test splits.

    Args:
        spec: ``"embedded:<name>"``, an image folder, or a CSV manifest (see module doc).
        cache_root: Where embedded data sets are generated, and where pixel caches and image
            checks are kept (``<cache_root>/pixels/<fingerprint>/``).
        seed: Seed of the stratified split that makes missing splits.
        val_fraction: Share of each stratum put in a made ``val`` split.
        test_fraction: Share of each stratum put in a made ``test`` split.
        embedded_counts: Images per split of an embedded set (default: the set's own).
        embedded_seed: Generation seed of an embedded set. Kept apart from ``seed`` so the
            embedded data stays the same across studies with different seeds.
        embedded_size: Image side of an embedded set, in pixels (default: the set's own).

    Returns:
        The data set; class and group names are sorted.

    Raises:
        DataError: For a missing path, an unknown embedded name, a malformed layout or manifest,
            a single class, an empty group, an unreadable image, or a split that ends up empty.
    """
    cache_root = Path(cache_root)
    source, records = _records(
        spec, cache_root=cache_root, embedded_seed=embedded_seed, embedded_size=embedded_size,
        embedded_counts=embedded_counts,
    )
    records, grouped = _with_groups(records, source)
    class_names = sorted({r.label for r in records})
    if len(class_names) < 2:
        raise DataError(
            f"{source} has a single class ({class_names[0]}); a classifier needs at least two",
            "add the other classes' folders (or rows)",
        )
    group_names = sorted({str(r.group) for r in records})
    by_split = assign_splits(
        records, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, source=source
    )
    class_index = {name: i for i, name in enumerate(class_names)}
    group_index = {name: i for i, name in enumerate(group_names)}
    probe = {
        name: Split(name, [r.path for r in by_split[name]],
                    np.array([class_index[r.label] for r in by_split[name]], dtype=np.int64),
                    np.array([group_index[str(r.group)] for r in by_split[name]], dtype=np.int64))
        for name in SPLITS
    }
    fingerprint = ImageDataset(class_names, group_names, probe, source, grouped=grouped).fingerprint()
    cache_dir = cache_root / "pixels" / fingerprint
    min_side = _check_images([p for s in probe.values() for p in s.paths], cache_dir / "checked.json")
    splits = {
        name: Split(name, split.paths, split.labels, split.groups, cache_dir=cache_dir)
        for name, split in probe.items()
    }
    return ImageDataset(class_names, group_names, splits, source, grouped=grouped, min_side=min_side)

