"""In-memory image data set: decoded images per split, labels, groups and model-ready arrays."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from evaluators.data.preprocess import normalise, resize_rgb
from evaluators.data.sources import SPLITS

_CHUNK = 256


class Split:
    """One split: image paths, decoded images, integer labels and groups.

    Invariants: ``paths``, ``images``, ``labels`` and ``groups`` have the same length and order;
    ``labels`` and ``groups`` are read-only int64 indices into the data set's ``class_names`` and
    ``group_names``; ``images`` are RGB Pillow images whose longest side is at most the
    ``max_side`` they were loaded with.

    Model inputs come from :meth:`arrays`, which applies THE preprocessing
    (:func:`evaluators.data.preprocess.preprocess`) to every image and caches the result per
    resolution (the ``max_cached_resolutions`` most recently used ones; 1200 images at 224 px take
    about 720 MB). It is thread-safe and the arrays it returns are read-only.

    Attributes:
        name: ``train``, ``val`` or ``test``.
        paths: Image files.
        images: Decoded images.
        labels: Class index of each image.
        groups: Group index of each image.
    """

    def __init__(
        self, name: str, paths: Sequence[Path], images: Sequence[Image.Image],
        labels: np.ndarray, groups: np.ndarray, *, max_cached_resolutions: int = 2,
    ) -> None:
        if not len(paths) == len(images) == len(labels) == len(groups):
            raise ValueError("paths, images, labels and groups must have the same length")
        self.name = name
        self.paths = list(paths)
        self.images = list(images)
        self.labels = np.array(labels, dtype=np.int64)
        self.groups = np.array(groups, dtype=np.int64)
        self.labels.flags.writeable = False
        self.groups.flags.writeable = False
        self.max_cached_resolutions = max(1, max_cached_resolutions)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} images)"

    def arrays(self, resolution: int) -> np.ndarray:
        """All images preprocessed at ``resolution``: read-only float32 ``(N, 3, R, R)``.

        Identical, image by image, to ``preprocess(image, resolution)``.
        """
        with self._lock:
            cached = self._cache.get(resolution)
            if cached is None:
                cached = self._compute(resolution)
                self._cache[resolution] = cached
                while len(self._cache) > self.max_cached_resolutions:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(resolution)
            return cached

    def _compute(self, resolution: int) -> np.ndarray:
        out = np.empty((len(self), 3, resolution, resolution), dtype=np.float32)
        for start in range(0, len(self), _CHUNK):
            chunk = self.images[start:start + _CHUNK]
            pixels = np.stack([resize_rgb(image, resolution) for image in chunk])
            out[start:start + len(chunk)] = normalise(pixels)
        out.flags.writeable = False
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class ImageDataset:
    """A loaded data set with train, val and test splits.

    Invariants: ``splits`` has exactly the keys ``train``, ``val``, ``test``, none empty;
    ``class_names`` and ``group_names`` are sorted and every label/group index of every split
    points into them.

    Attributes:
        class_names: Class names; label ``i`` is ``class_names[i]``.
        group_names: Group names; group ``j`` is ``group_names[j]``.
        splits: The splits by name.
        source: Where the data came from (the spec and, for embedded data, its folder).
    """

    def __init__(
        self, class_names: Sequence[str], group_names: Sequence[str], splits: dict[str, Split], source: str
    ) -> None:
        if set(splits) != set(SPLITS):
            raise ValueError(f"splits must be exactly {SPLITS}, got {sorted(splits)}")
        self.class_names = list(class_names)
        self.group_names = list(group_names)
        self.splits = {name: splits[name] for name in SPLITS}
        self.source = source

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
        lines = [
            f"{self.source}: {total} images, {len(self.class_names)} classes, {len(self.group_names)} groups",
            f"classes: {', '.join(self.class_names)}",
        ]
        columns = self.group_names + self.class_names
        widths = [max(6, len(c)) for c in columns]
        lines.append(f"{'split':<6} {'images':>6} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
        for name, split in self.splits.items():
            values = list(self.group_counts(name).values()) + list(self.class_counts(name).values())
            lines.append(f"{name:<6} {len(split):>6} " + " ".join(f"{v:>{w}}" for v, w in zip(values, widths)))
        minority = self.smallest_group()
        share = self.group_counts("train")[minority] / max(1, len(self.splits["train"]))
        lines.append(f"minority group (smallest in train): {minority} ({share:.1%} of train)")
        return "\n".join(lines)
