"""The generated esfair data set: determinism, layout, minority share, contrast gap, caching."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluators.data.lesions import CLASSES, GROUPS, render_lesion
from evaluators.data.png import encode_png
from evaluators.data.synthetic import DEFAULT_COUNTS, EMBEDDED, MARKER, EmbeddedSpec, ensure_embedded, generate_esfair
from evaluators.errors import DataError

SIZE = 48
COUNTS = {"train": 40, "val": 16, "test": 16}


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_esfair(tmp_path_factory.mktemp("gen") / "esfair", seed=3, size=SIZE, counts=COUNTS)


def test_same_seed_gives_identical_bytes(generated: Path, tmp_path: Path) -> None:
    again = generate_esfair(tmp_path / "again", seed=3, size=SIZE, counts=COUNTS)
    assert _digest(again) == _digest(generated)


def test_other_seed_gives_other_images(generated: Path, tmp_path: Path) -> None:
    other = _digest(generate_esfair(tmp_path / "other", seed=4, size=SIZE, counts=COUNTS))
    first = _digest(generated)
    assert len(set(other.values()) & set(first.values())) == 0


def test_layout_counts_and_image_format(generated: Path) -> None:
    for split, count in COUNTS.items():
        files = sorted((generated / split).rglob("*.png"))
        assert len(files) == count
        for path in files:
            group, lesion_class = path.parent.parent.name, path.parent.name
            assert group in GROUPS and lesion_class in CLASSES
            assert path.name.startswith(f"{split}_")
    assert {p.name for p in generated.iterdir()} == {"train", "val", "test"}
    with Image.open(next((generated / "train").rglob("*.png"))) as image:
        assert image.mode == "RGB" and image.size == (SIZE, SIZE)


def test_minority_share_and_every_class_in_every_group(generated: Path) -> None:
    files = list((generated / "train").rglob("*.png"))
    dark = [p for p in files if p.parent.parent.name == "dark"]
    assert len(dark) / len(files) == pytest.approx(0.12, abs=0.02)
    for group in GROUPS:
        per_class = [len(list((generated / "train" / group / c).glob("*.png"))) for c in CLASSES]
        assert min(per_class) >= 1 and max(per_class) - min(per_class) <= 1


def _lesion_contrast(lesion_class: str, group: str, index: int) -> tuple[float, float]:
    """Absolute (grey levels) and relative (Weber) colour difference between lesion and skin."""
    rendered = render_lesion(np.random.default_rng([11, index]), lesion_class, group, 64)
    pixels = rendered.image.astype(np.float64)
    inside = pixels[rendered.mask > 0.9].mean(axis=0)
    outside = pixels[rendered.mask < 0.05].mean(axis=0)
    return float(np.abs(inside - outside).mean()), float((np.abs(inside - outside) / outside).mean())


def test_minority_group_lesions_have_less_contrast() -> None:
    """Less absolute contrast (darker skin) and less relative contrast (pigment masked by melanin)."""
    contrast = {
        group: np.mean([_lesion_contrast(CLASSES[i % 4], group, i) for i in range(24)], axis=0)
        for group in GROUPS
    }
    absolute = {group: c[0] for group, c in contrast.items()}
    weber = {group: c[1] for group, c in contrast.items()}
    assert absolute["dark"] < 0.6 * absolute["medium"] < 0.6 * absolute["light"]
    assert weber["dark"] < 0.85 * weber["light"] and weber["dark"] < 0.85 * weber["medium"]


def test_minority_contrast_gap_shows_in_written_files(generated: Path) -> None:
    """Centre-versus-edge luminance difference of the PNGs, averaged per group."""
    def centre_edge(path: Path) -> float:
        grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        ring = np.concatenate([grey[:4].ravel(), grey[-4:].ravel(), grey[:, :4].ravel(), grey[:, -4:].ravel()])
        return float(np.median(ring) - grey[20:28, 20:28].mean())

    split = generated / "train"
    gap = {g: np.mean([centre_edge(p) for p in (split / g).rglob("*.png")]) for g in GROUPS}
    assert gap["dark"] < 0.6 * gap["light"]


def test_fine_detail_is_lost_at_low_resolution() -> None:
    """Keratosis granules and carcinoma vessels are high-frequency: shrinking to 64 px removes
    far more of the lesion's pixel-to-pixel variation than it does for a nevus (median over
    images, robust to the occasional hair)."""
    def detail_lost(lesion_class: str) -> float:
        lost = []
        for i in range(12):
            rendered = render_lesion(np.random.default_rng([5, i]), lesion_class, "light", 224)
            image = Image.fromarray(rendered.image).convert("L")
            back = image.resize((64, 64), Image.BILINEAR).resize((224, 224), Image.BILINEAR)
            residual = np.asarray(image, dtype=np.float64) - np.asarray(back, dtype=np.float64)
            lost.append(residual[rendered.mask > 0.9].std())
        return float(np.median(lost))

    nevus = detail_lost("nevus")
    assert detail_lost("seborrheic_keratosis") > 4.0 * nevus
    assert detail_lost("basal_cell_carcinoma") > 2.0 * nevus


def test_render_rejects_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown class"):
        render_lesion(np.random.default_rng(0), "wart", "light", 32)


def test_png_encoder_round_trips() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (13, 21, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(pixels))))
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, pixels)


def test_generate_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(DataError, match="not an empty folder"):
        generate_esfair(tmp_path, size=16, counts={"train": 4, "val": 4, "test": 4})


def test_generate_rejects_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="counts"):
        generate_esfair(tmp_path / "x", size=16, counts={"train": 4, "val": 4})


def test_ensure_embedded_generates_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def counting(root: Path, **kwargs: object) -> Path:
        calls.append(root)
        return generate_esfair(root, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setitem(EMBEDDED, "esfair", EmbeddedSpec(counting, 224, DEFAULT_COUNTS))
    counts = {"train": 8, "val": 4, "test": 4}
    first = ensure_embedded(tmp_path, seed=1, size=24, counts=counts)
    assert first.parent == tmp_path and first.name.startswith("esfair-v1-seed1-24px-")
    marker = json.loads((first / MARKER).read_text())
    assert marker["counts"] == counts and marker["seed"] == 1 and marker["size"] == 24
    again = ensure_embedded(tmp_path, seed=1, size=24, counts=counts)
    assert again == first and len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    other = ensure_embedded(tmp_path, seed=1, size=24, counts={"train": 8, "val": 4, "test": 8})
    assert other != first and len(calls) == 2


def test_ensure_embedded_loser_of_a_race_keeps_the_winners_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process publishes the same folder while this one generates: this copy is dropped."""
    counts = {"train": 4, "val": 4, "test": 4}
    winner = ensure_embedded(tmp_path / "winner", seed=0, size=16, counts=counts)

    def racing(root: Path, **kwargs: object) -> Path:
        shutil.copytree(winner, tmp_path / "cache" / winner.name)
        return generate_esfair(root, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setitem(EMBEDDED, "esfair", EmbeddedSpec(racing, 224, DEFAULT_COUNTS))
    published = ensure_embedded(tmp_path / "cache", seed=0, size=16, counts=counts)
    assert published == tmp_path / "cache" / winner.name
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [winner.name]
    assert _digest(published) == _digest(winner)


def test_ensure_embedded_regenerates_half_written_folder(tmp_path: Path) -> None:
    counts = {"train": 8, "val": 4, "test": 4}
    complete = ensure_embedded(tmp_path, seed=2, size=24, counts=counts)
    expected = _digest(complete)
    (complete / MARKER).unlink()
    next(complete.rglob("*.png")).unlink()
    (complete / "train" / "junk.png").write_bytes(b"half")
    rebuilt = ensure_embedded(tmp_path, seed=2, size=24, counts=counts)
    assert rebuilt == complete and (rebuilt / MARKER).is_file()
    assert _digest(rebuilt) == expected
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_ensure_embedded_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown embedded data set 'isic'") as info:
        ensure_embedded(tmp_path, "isic")
    assert "embedded:esfair" in info.value.fix


def test_the_lpirc_set_is_an_image_folder_without_groups(tmp_path: Path) -> None:
    from evaluators.data import load_dataset

    counts = {"train": 16, "val": 8, "test": 8}
    root = ensure_embedded(tmp_path, "lpirc", size=24, counts=counts)
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(
        ["basal_cell_carcinoma", "melanoma", "nevus", "seborrheic_keratosis"])
    dataset = load_dataset("embedded:lpirc", cache_root=tmp_path, embedded_counts=counts, embedded_size=24)
    assert not dataset.grouped and {n: len(s) for n, s in dataset.splits.items()} == counts
