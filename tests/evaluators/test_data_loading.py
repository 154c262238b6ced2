"""load_dataset on grouped folders, CSV manifests and the embedded set, and every bad input."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pytest
from PIL import Image

from evaluators.data import ImageDataset, load_dataset
from evaluators.errors import DataError

GROUPS = ("a", "b")
CLASSES = ("x", "y", "z")


def _image(path: Path, seed: int, size: tuple[int, int] = (20, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _grouped(root: Path, per: int = 10, groups: Iterable[str] = GROUPS, classes: Iterable[str] = CLASSES) -> Path:
    n = 0
    for group in groups:
        for cls in classes:
            for i in range(per):
                n += 1
                _image(root / group / cls / f"{cls}{i}.png", n)
    return root


def _strata(dataset: ImageDataset, split: str) -> Counter[tuple[str, str]]:
    s = dataset.splits[split]
    return Counter((dataset.class_names[y], dataset.group_names[g]) for y, g in zip(s.labels, s.groups))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_folder_without_splits_is_split_stratified_and_seeded(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data")
    before = _snapshot(root)
    ds = load_dataset(root, cache_root=tmp_path / "cache", seed=0)
    assert ds.class_names == list(CLASSES) and ds.group_names == list(GROUPS)
    assert {name: len(s) for name, s in ds.splits.items()} == {"train": 42, "val": 9, "test": 9}
    for split in ("train", "val", "test"):
        assert set(_strata(ds, split)) == {(c, g) for c in CLASSES for g in GROUPS}
    all_paths = [p for s in ds.splits.values() for p in s.paths]
    assert len(set(all_paths)) == 60
    for split in ds.splits.values():
        for path, label, group in zip(split.paths, split.labels, split.groups):
            assert path.parent.name == ds.class_names[label] and path.parent.parent.name == ds.group_names[group]
    assert ds.splits["train"].labels.dtype == np.int64 and ds.splits["train"].groups.dtype == np.int64
    again = load_dataset(root, cache_root=tmp_path / "cache", seed=0)
    other = load_dataset(root, cache_root=tmp_path / "cache", seed=1)
    assert again.splits["val"].paths == ds.splits["val"].paths
    assert other.splits["val"].paths != ds.splits["val"].paths
    assert _snapshot(root) == before
    assert [p.parent.name for p in (tmp_path / "cache").rglob("checked.json")], "the image check is remembered"


def test_small_strata_keep_one_training_image_and_deal_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for cls, n in (("x", 1), ("y", 2), ("z", 3)):
        for i in range(n):
            _image(root / "a" / cls / f"{i}.png", i + 10 * n)
    ds = load_dataset(root, cache_root=tmp_path, seed=0)
    train, val, test = (_strata(ds, s) for s in ("train", "val", "test"))
    assert train[("x", "a")] == 1 and val[("x", "a")] == 0 and test[("x", "a")] == 0
    assert train[("y", "a")] == 1 and val[("y", "a")] + test[("y", "a")] == 1
    assert train[("z", "a")] == 1 and val[("z", "a")] == 1 and test[("z", "a")] == 1


def test_split_folders_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _grouped(root / "train", per=4)
    _grouped(root / "val", per=2)
    _grouped(root / "test", per=1)
    ds = load_dataset(root, cache_root=tmp_path)
    assert {name: len(s) for name, s in ds.splits.items()} == {"train": 24, "val": 12, "test": 6}
    for name, split in ds.splits.items():
        assert all(p.relative_to(root).parts[0] == name for p in split.paths)
    assert ds.group_counts("val") == {"a": 6, "b": 6}


def test_missing_split_folder_is_carved_from_train(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _grouped(root / "train", per=10)
    _grouped(root / "test", per=2)
    ds = load_dataset(root, cache_root=tmp_path, val_fraction=0.2)
    assert len(ds.splits["test"]) == 12
    assert len(ds.splits["val"]) == 12 and len(ds.splits["train"]) == 48
    assert all(p.relative_to(root).parts[0] == "train" for p in ds.splits["val"].paths)


def _manifest(path: Path, rows: list[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_manifest_with_splits_relative_and_absolute_paths(tmp_path: Path) -> None:
    rows = []
    for i in range(24):
        split = ("train", "train", "val", "test")[i % 4]
        image = _image(tmp_path / "img" / f"{i}.jpg", i)
        path = str(image) if i % 2 else f"img/{i}.jpg"
        rows.append({"group": ("light", "dark")[i % 3 == 0], "note": "n/a", "path": path,
                     "label": ("benign", "malignant")[i % 2], "split": split})
    manifest = _manifest(tmp_path / "data.csv", rows, ["group", "note", "path", "label", "split"])
    ds = load_dataset(manifest, cache_root=tmp_path / "cache")
    assert ds.class_names == ["benign", "malignant"] and ds.group_names == ["dark", "light"]
    assert {name: len(s) for name, s in ds.splits.items()} == {"train": 12, "val": 6, "test": 6}
    assert ds.splits["val"].paths[0].is_absolute()


def test_csv_manifest_without_split_column_is_split(tmp_path: Path) -> None:
    rows = [
        {"path": str(_image(tmp_path / f"{i}.png", i)), "label": f"c{i % 2}", "group": f"g{i % 3}"}
        for i in range(36)
    ]
    ds = load_dataset(_manifest(tmp_path / "m.csv", rows, ["path", "label", "group"]), cache_root=tmp_path)
    assert sum(len(s) for s in ds.splits.values()) == 36
    assert len(_strata(ds, "val")) == 6 and len(_strata(ds, "test")) == 6


def test_pixels_are_resized_straight_from_the_file_and_cached_on_disk(tmp_path: Path) -> None:
    from evaluators.data import preprocess

    root = tmp_path / "data"
    for cls in ("x", "y"):
        for i in range(3):
            _image(root / "g" / cls / f"{i}.png", i, size=(300, 150))
    ds = load_dataset(root, cache_root=tmp_path / "cache")
    split = ds.splits["train"]
    pixels = split.pixels(24)
    assert pixels.shape == (len(split), 24, 24, 3) and pixels.dtype == np.uint8 and ds.min_side == 150
    expected = preprocess(Image.open(split.paths[0]).convert("RGB"), 24)
    np.testing.assert_array_equal(split.arrays(24)[0], expected)
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npy"))
    assert cached == ["train-24px.npy"]
    again = load_dataset(root, cache_root=tmp_path / "cache").splits["train"]
    assert isinstance(again.pixels(24), np.memmap)
    np.testing.assert_array_equal(again.pixels(24), pixels)


def test_plain_image_folder_and_csv_without_groups_load_ungrouped(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rows = []
    for cls in CLASSES:
        for i in range(8):
            rows.append({"path": str(_image(root / cls / f"{i}.png", i)), "label": cls})
    folder = load_dataset(root, cache_root=tmp_path / "cache")
    assert not folder.grouped and folder.group_names == ["all"] and folder.class_names == list(CLASSES)
    assert sum(len(s) for s in folder.splits.values()) == 24 and "no groups" in folder.describe()
    manifest = load_dataset(_manifest(tmp_path / "m.csv", rows, ["path", "label"]), cache_root=tmp_path / "cache")
    assert not manifest.grouped and sum(len(s) for s in manifest.splits.values()) == 24
    split_root = tmp_path / "split"
    for split in ("train", "val", "test"):
        for cls in CLASSES:
            _image(split_root / split / cls / "0.png", 1)
    assert {n: len(s) for n, s in load_dataset(split_root, cache_root=tmp_path / "c2").splits.items()} == {
        "train": 3, "val": 3, "test": 3}


def test_embedded_spec_generates_and_reuses(tmp_path: Path) -> None:
    counts = {"train": 24, "val": 8, "test": 8}
    ds = load_dataset("embedded:esfair", cache_root=tmp_path, embedded_counts=counts, embedded_size=32)
    assert ds.class_names == sorted(["nevus", "melanoma", "seborrheic_keratosis", "basal_cell_carcinoma"])
    assert ds.group_names == ["dark", "light", "medium"]
    assert {name: len(s) for name, s in ds.splits.items()} == counts
    assert ds.smallest_group() == "dark" and ds.group_counts("train")["dark"] == 3
    text = ds.describe()
    assert text.startswith("embedded:esfair (") and "minority group (smallest in train): dark" in text
    folders = list(tmp_path.iterdir())
    again = load_dataset("embedded:esfair", cache_root=tmp_path, embedded_counts=counts, embedded_size=32)
    assert list(tmp_path.iterdir()) == folders
    assert again.splits["test"].paths == ds.splits["test"].paths


def test_fingerprint_follows_the_files_and_split_not_the_location(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "one", per=5)
    moved = root.rename(tmp_path / "two")
    first = load_dataset(moved, cache_root=tmp_path, seed=0).fingerprint()
    _grouped(tmp_path / "three", per=5)
    assert load_dataset(tmp_path / "three", cache_root=tmp_path, seed=0).fingerprint() == first
    assert load_dataset(tmp_path / "three", cache_root=tmp_path, seed=1).fingerprint() != first
    _image(tmp_path / "three" / "a" / "x" / "extra.png", 1000)
    assert load_dataset(tmp_path / "three", cache_root=tmp_path, seed=0).fingerprint() != first


def _error(spec: str | Path, tmp_path: Path, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(spec, cache_root=tmp_path / "cache", **kwargs)
    return info.value


def test_error_missing_path(tmp_path: Path) -> None:
    error = _error(tmp_path / "nowhere", tmp_path)
    assert "nowhere" in error.problem and "does not exist" in error.problem


def test_error_not_a_folder_or_csv(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x")
    assert "neither a folder nor a .csv" in _error(tmp_path / "data.txt", tmp_path).problem


def test_error_unknown_embedded_name(tmp_path: Path) -> None:
    error = _error("embedded:isic", tmp_path)
    assert "unknown embedded data set 'isic'" in error.problem and "embedded:esfair" in error.fix


def test_error_single_class(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=5, classes=("only",))
    assert "single class (only)" in _error(root, tmp_path).problem


def test_error_empty_group_folder(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=5)
    (root / "c" / "x").mkdir(parents=True)
    (root / "c" / "notes.txt").write_text("no images here")
    error = _error(root, tmp_path)
    assert f"group folder {root / 'c'} has no images" in error.problem


def test_error_folder_mixing_class_and_group_folders(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _image(root / "x" / "0.png", 0)
    _image(root / "g" / "y" / "0.png", 1)
    assert "mixes class folders with images" in _error(root, tmp_path).problem


def test_error_corrupt_image_names_the_file(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=5)
    bad = root / "b" / "y" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    error = _error(root, tmp_path)
    assert f"cannot read image {bad}" in error.problem


def test_error_truncated_image_names_the_file(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=5)
    bad = _image(root / "a" / "z" / "cut.png", 99, size=(64, 64))
    bad.write_bytes(bad.read_bytes()[:200])
    assert f"cannot read image {bad}" in _error(root, tmp_path).problem


def test_error_csv_missing_columns(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "m.csv", [{"file": "a.png", "label": "x"}], ["file", "label"])
    error = _error(manifest, tmp_path)
    assert str(manifest) in error.problem and "lacks column(s) path" in error.problem


def test_error_csv_names_missing_file(tmp_path: Path) -> None:
    rows = [{"path": str(_image(tmp_path / "a.png", 0)), "label": "x", "group": "g"},
            {"path": "gone.png", "label": "y", "group": "g"}]
    error = _error(_manifest(tmp_path / "m.csv", rows, ["path", "label", "group"]), tmp_path)
    assert f"line 3 names {tmp_path / 'gone.png'}, which does not exist" in error.problem


def test_error_csv_bad_split_value(tmp_path: Path) -> None:
    rows = [{"path": str(_image(tmp_path / "a.png", 0)), "label": "x", "group": "g", "split": "holdout"}]
    error = _error(_manifest(tmp_path / "m.csv", rows, ["path", "label", "group", "split"]), tmp_path)
    assert "split 'holdout' is not one of" in error.problem


def test_error_csv_without_rows(tmp_path: Path) -> None:
    assert "has no rows" in _error(_manifest(tmp_path / "m.csv", [], ["path", "label", "group"]), tmp_path).problem


def test_error_split_that_ends_up_empty(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=1)
    error = _error(root, tmp_path)
    assert "split of" in error.problem and "is empty" in error.problem and str(root) in error.problem


def test_error_split_folders_without_train(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _grouped(root / "val", per=2)
    _grouped(root / "test", per=2)
    assert "has no training images" in _error(root, tmp_path).problem


def test_error_split_folders_mixed_with_group_folders(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _grouped(root / "train", per=2)
    _grouped(root / "extra", per=2)
    assert "mixes split folders" in _error(root, tmp_path).problem


def test_error_unusable_fractions(tmp_path: Path) -> None:
    root = _grouped(tmp_path / "data", per=3)
    assert "cannot make the missing split" in _error(root, tmp_path, val_fraction=0.6, test_fraction=0.5).problem


def test_fractions_are_ignored_when_every_split_is_given(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for split in ("train", "val", "test"):
        _grouped(root / split, per=1)
    assert len(load_dataset(root, cache_root=tmp_path, val_fraction=0.0).splits["val"]) == 6


def test_error_empty_data_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert "has no class or group folders" in _error(tmp_path / "data", tmp_path).problem
