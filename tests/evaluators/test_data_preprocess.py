"""THE preprocessing, Split.arrays caching, and iterate_batches."""

from __future__ import annotations

import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from evaluators.data import MEAN, STD, Split, iterate_batches, preprocess


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path


def _split(folder: Path, n: int = 10, size: int = 24) -> Split:
    """A split of ``n`` real PNG files (``size`` x ``size + 4``), labels 0..n-1, groups i % 3."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return Split("train", paths, np.arange(n), np.arange(n) % 3)


def test_preprocess_constant_colour_exact_values() -> None:
    image = Image.new("RGB", (40, 30), (255, 0, 128))
    out = preprocess(image, 16)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = [(v / 255.0 - m) / s for v, m, s in zip((255, 0, 128), MEAN, STD)]
    for channel in range(3):
        np.testing.assert_allclose(out[channel], expected[channel], rtol=1e-6)
    assert MEAN == (0.485, 0.456, 0.406) and STD == (0.229, 0.224, 0.225)


def test_preprocess_is_rgb_bilinear_resize_then_normalise() -> None:
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), mode="RGBA")
    resized = np.asarray(image.convert("RGB").resize((20, 20), Image.BILINEAR), dtype=np.float32)
    reference = ((resized / 255.0 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)).transpose(2, 0, 1)
    np.testing.assert_allclose(preprocess(image, 20), reference, rtol=1e-6, atol=1e-6)
    grey = Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), mode="L")
    out = preprocess(grey, 10)
    np.testing.assert_allclose(out[0] * STD[0] + MEAN[0], out[1] * STD[1] + MEAN[1], atol=1e-6)


def test_arrays_match_preprocess_and_are_cached_read_only(folder: Path) -> None:
    split = _split(folder)
    arrays = split.arrays(16)
    assert arrays.shape == (10, 3, 16, 16) and arrays.dtype == np.float32
    for i, path in enumerate(split.paths):
        np.testing.assert_array_equal(arrays[i], preprocess(Image.open(path).convert("RGB"), 16))
    assert split.arrays(16) is arrays
    with pytest.raises(ValueError):
        arrays[0, 0, 0, 0] = 1.0


def test_arrays_cache_keeps_recent_resolutions_only(folder: Path) -> None:
    split = _split(folder)
    first = split.arrays(8)
    split.arrays(12)
    assert split.arrays(8) is first
    split.arrays(16)
    split.arrays(12)
    assert split.arrays(8) is not first


def test_arrays_are_computed_once_across_threads(folder: Path) -> None:
    split = _split(folder, n=30)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: split.arrays(20), range(8)))
    assert all(r is results[0] for r in results)


def test_split_pickles_without_its_cache(folder: Path) -> None:
    split = _split(folder)
    split.arrays(8)
    clone = pickle.loads(pickle.dumps(split))
    np.testing.assert_array_equal(clone.arrays(8), split.arrays(8))
    assert clone.labels.dtype == np.int64 and len(clone) == 10


def test_batches_shapes_dtypes_and_coverage(folder: Path) -> None:
    split = _split(folder, n=10)
    batches = list(iterate_batches(split, 16, 4, shuffle=False, augment=False, seed=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    x, y, g = batches[0]
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and g.dtype == torch.int64
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.arange(10))
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.arange(10) % 3)
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy(), split.arrays(16))


def test_batches_shuffle_is_seeded_and_drop_last(folder: Path) -> None:
    split = _split(folder, n=10)

    def order(seed: int) -> torch.Tensor:
        return torch.cat([b[1] for b in iterate_batches(split, 8, 3, shuffle=True, augment=False, seed=seed)])

    assert torch.equal(order(5), order(5))
    assert not torch.equal(order(5), order(6))
    assert sorted(order(5).tolist()) == list(range(10))
    kept = list(iterate_batches(split, 8, 3, shuffle=True, augment=False, seed=5, drop_last=True))
    assert [len(b[1]) for b in kept] == [3, 3, 3]


def test_augment_only_flips_and_uses_all_flips(folder: Path) -> None:
    split = _split(folder, n=40)
    reference = torch.from_numpy(split.arrays(12).copy())
    seen = set()
    for x, y, _ in iterate_batches(split, 12, 16, shuffle=True, augment=True, seed=2):
        for image, label in zip(x, y):
            original = reference[label]
            variants = {
                "none": original, "h": original.flip(-1), "v": original.flip(-2), "hv": original.flip(-1).flip(-2),
            }
            matches = [name for name, v in variants.items() if torch.equal(image, v)]
            assert matches, "augmented image is not a flip of its source"
            seen.add(matches[0])
    assert seen == {"none", "h", "v", "hv"}


def test_batch_size_must_be_positive(folder: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(_split(folder), 8, 0, shuffle=False, augment=False, seed=0))


def test_importing_the_data_package_does_not_import_torch() -> None:
    code = "import sys, evaluators.data; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
