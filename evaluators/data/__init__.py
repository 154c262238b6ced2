"""Data: the embedded synthetic data sets, loading of real data, THE preprocessing, batches.

Importing this package loads numpy and Pillow only; torch is imported when
:func:`iterate_batches` first runs.

Public API:

* :func:`load_dataset` -> :class:`ImageDataset` (splits ``train``/``val``/``test`` of
  :class:`Split`), from ``"embedded:<name>"``, a grouped image folder, an ImageFolder, or a CSV
  manifest.
* :func:`preprocess`, :data:`MEAN`, :data:`STD`: the single image-to-input transform.
* :func:`iterate_batches`: torch mini-batches with optional flip augmentation.
* :func:`generate_esfair`, :func:`ensure_embedded`: the generated dermatology-like data set.
"""

from evaluators.data.batches import iterate_batches
from evaluators.data.dataset import UNGROUPED, ImageDataset, Split
from evaluators.data.loading import EMBEDDED_PREFIX, load_dataset, open_rgb
from evaluators.data.preprocess import MEAN, STD, normalise, preprocess
from evaluators.data.sources import IMAGE_SUFFIXES, SPLITS
from evaluators.data.synthetic import DEFAULT_COUNTS, EMBEDDED, ensure_embedded, generate_esfair

__all__ = [
    "DEFAULT_COUNTS", "EMBEDDED", "EMBEDDED_PREFIX", "IMAGE_SUFFIXES", "MEAN", "SPLITS", "STD",
    "ImageDataset", "Split", "UNGROUPED", "open_rgb", "ensure_embedded", "generate_esfair",
    "iterate_batches", "load_dataset", "normalise", "preprocess",
]
