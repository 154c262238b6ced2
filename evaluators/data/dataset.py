"""In-memory view of a data set: splits of image paths, labels and groups, and model-ready pixels.

Images are decoded once per split and resolution: :meth:`Split.pixels` runs THE preprocessing's
resize (:func:`evaluators.data.preprocess.resize_rgb`, straight from the decoded file, as a
deployed model's ``run_onnx.py`` does) over every image and keeps the result as one ``uint8``
array, in memory and, when the split has a cache folder, in an ``.npy`` file that later runs,
other processes and Ray workers on the host map instead of decoding again. Normalisation happens
per batch (:func:`evaluators.data.preprocess.normalise`), so no epoch decodes a JPEG.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evaluators.data.preprocess import normalise, resize_rgb
from evaluators.data.sources import SPLITS
from evaluators.files import atomic_write, exclusive_lock

UNGROUPED = "all"
"""The single group name of data without groups."""

_DECODE_THREADS = min(4, os.cpu_count() or 1)


def decode_resized(path: Path, resolution: int) -> np.ndarray:
    """THE preprocessing's pixels of one image file: RGB, resized to ``resolution`` squared.

    Raises:
        DataError: The file cannot be read as an image (names the file).
    """
    from evaluators.data.loading import open_rgb

    return resize_rgb(open_rgb(path), resolution)


class Split:
    """One split: image paths, integer labels and groups, and its pixels per resolution.

    Invariants: ``paths``, ``labels`` and ``groups`` have the same length and order; ``labels``
    and ``groups`` are read-only int64 indices into the data set's ``class_names`` and
    ``group_names``. ``pixels(R)[i]`` equals ``resize_rgb(open_rgb(paths[i]), R)`` and
    ``arrays(R)[i]`` equals ``preprocess(open_rgb(paths[i]), R)`` exactly. Both are read-only,
    thread-safe, and computed at most once per process and resolution (``pixels`` at most once per
    host when ``cache_dir`` is set).

    Attributes:
        name: ``train``, ``val`` or ``test``.
        paths: Image files.
        labels: Class index of each image.
        groups: Group index of each image.
        cache_dir: Folder of the ``<name>-<R>px.npy`` pixel caches (``None``: memory only).
    """

    def __init__(
        self, name: str, paths: Sequence[Path], labels: np.ndarray, groups: np.ndarray, *,
        cache_dir: Path | None = None, max_cached_resolutions: int = 2,
    ) -> None:
        if not len(paths) == len(labels) == len(groups):
            raise ValueError("paths, labels and groups must have the same length")
        self.name = name
        self.paths = [Path(p) for p in paths]
        self.labels = np.array(labels, dtype=np.int64)
        self.groups = np.array(groups, dtype=np.int64)
        self.labels.flags.writeable = False
        self.groups.flags.writeable = False
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.max_cached_resolutions = max(1, max_cached_resolutions)
        self._pixels: dict[int, np.ndarray] = {}
        self._arrays: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} images)"

    def pixels(self, resolution: int) -> np.ndarray:
        """Every image resized to ``resolution``: read-only ``uint8`` ``(N, R, R, 3)``."""
        with self._lock:
            cached = self._pixels.get(resolution)
            if cached is None:
                cached = self._load_or_decode(resolution)
                self._pixels[resolution] = cached
            return cached

    def arrays(self, resolution: int) -> np.ndarray:
        """Every image preprocessed at ``resolution``: read-only float32 ``(N, 3, R, R)``.

        The ``max_cached_resolutions`` most recently used resolutions are kept.
        """
        pixels = self.pixels(resolution)
        with self._lock:
            cached = self._arrays.get(resolution)
            if cached is None:
                cached = normalise(pixels)
                cached.flags.writeable = False
                self._arrays[resolution] = cached
                while len(self._arrays) > self.max_cached_resolutions:
                    self._arrays.popitem(last=False)
            else:
                self._arrays.move_to_end(resolution)
            return cached

    def _cache_file(self, resolution: int) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{self.name}-{resolution}px.npy"

    def _load_or_decode(self, resolution: int) -> np.ndarray:
        target = self._cache_file(resolution)
        if target is None:
            return self._decode(resolution)
        target.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(target.with_suffix(".lock")):
            loaded = _load_cache(target, len(self), resolution)
            if loaded is not None:
                return loaded
            pixels = self._decode(resolution)
            atomic_write(target, lambda handle: np.save(handle, pixels))
        return np.load(target, mmap_mode="r")

    def _decode(self, resolution: int) -> np.ndarray:
        out = np.empty((len(self), resolution, resolution, 3), dtype=np.uint8)

        def fill(index: int) -> None:
            out[index] = decode_resized(self.paths[index], resolution)

        with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
            list(pool.map(fill, range(len(self))))
        out.flags.writeable = False
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pixels"] = {}
        state["_arrays"] = OrderedDict()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _load_cache(path: Path, count: int, resolution: int) -> np.ndarray | None:
    """The cached pixels at ``path`` when they have the expected shape, else ``None``."""
    if not path.is_file():
        return None
    try:
        cached = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    if cached.shape != (count, resolution, resolution, 3) or cached.dtype != np.uint8:
        return None
    return cached


class ImageDataset:
    """A loaded data set with train, val and test splits.

    Invariants: ``splits`` has exactly the keys ``train``, ``val``, ``test``, none empty;
    ``class_names`` and ``group_names`` are sorted and every label/group index of every split
    points into them; data without groups has the single group :data:`UNGROUPED` and
    ``grouped`` False.

    Attributes:
        class_names: Class names; label ``i`` is ``class_names[i]``.
        group_names: Group names; group ``j`` is ``group_names[j]``.
        splits: The splits by name.
        source: Where the data came from (the spec and, for embedded data, its folder).
        grouped: Whether the source gives groups.
        min_side: The smallest image side in the data (pixels).
    """

    def __init__(
        self, class_names: Sequence[str], group_names: Sequence[str], splits: dict[str, Split], source: str,
        *, grouped: bool = True, min_side: int = 0,
    ) -> None:
        if set(splits) != set(SPLITS):
            raise ValueError(f"splits must be exactly {SPLITS}, got {sorted(splits)}")
        self.class_names = list(class_names)
        self.group_names = list(group_names)
        self.splits = {name: splits[name] for name in SPLITS}
        self.source = source
        self.grouped = grouped
        self.min_side = min_side

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def group_counts(self, split: str) -> dict[str, int]:
        """Images of each group in ``split`` (every group listed, zero included)."""
        counts = np.bincount(self.splits[split].groups, minlength=len(self.group_names))
        return {name: int(n) for name, n in zip(self.group_names, counts)}

    def class_counts(self, split: str) -> dict[str, int]:
        """Images of each class in ``split`` (every class listed, zero included)."""
        counts = np.bincount(self.splits[split].labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def smallest_group(self, split: str = "train") -> str:
        """The group with the fewest images in ``split`` (first by name on ties): the minority."""
        counts = self.group_counts(split)
        return min(self.group_names, key=lambda g: (counts[g], g))

    def majority_share(self, split: str = "val") -> float:
        """Accuracy of always predicting the most frequent training class, on ``split`` (chance)."""
        majority = int(np.argmax(np.bincount(self.splits["train"].labels, minlength=self.num_classes)))
        labels = self.splits[split].labels
        return float(np.mean(labels == majority)) if len(labels) else 0.0

    def fingerprint(self) -> str:
        """Short hash identifying the data and its split: every image's path (relative to the
        images' common folder), file size, class, group and split. Cheap (no pixel reads); the same
        files split the same way give the same fingerprint wherever the folder lives."""
        paths = [p for split in self.splits.values() for p in split.paths]
        common = Path(os.path.commonpath([str(p) for p in paths]))
        digest = hashlib.sha256()
        for name, split in self.splits.items():
            for path, label, group in zip(split.paths, split.labels, split.groups):
                row = (name, path.relative_to(common).as_posix(), path.stat().st_size,
                       self.class_names[label], self.group_names[group])
                digest.update(repr(row).encode())
        return digest.hexdigest()[:16]

    def describe(self) -> str:
        """Multi-line human summary: source, classes, and images per split x group and class."""
        total = sum(len(s) for s in self.splits.values())
        groups = f"{len(self.group_names)} groups" if self.grouped else "no groups"
        lines = [
            f"{self.source}: {total} images, {len(self.class_names)} classes, {groups}",
            f"classes: {', '.join(self.class_names)}",
        ]
        columns = (self.group_names if self.grouped else []) + self.class_names
        widths = [max(6, len(c)) for c in columns]
        lines.append(f"{'split':<6} {'images':>6} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
        for name, split in self.splits.items():
            values = (list(self.group_counts(name).values()) if self.grouped else []) + list(
                self.class_counts(name).values())
            lines.append(f"{name:<6} {len(split):>6} " + " ".join(f"{v:>{w}}" for v, w in zip(values, widths)))
        if self.grouped:
            minority = self.smallest_group()
            share = self.group_counts("train")[minority] / max(1, len(self.splits["train"]))
            lines.append(f"minority group (smallest in train): {minority} ({share:.1%} of train)")
        return "\n".join(lines)
