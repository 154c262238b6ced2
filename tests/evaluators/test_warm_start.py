"""Warm starts: local weights files found by timm variant name, loaded by timm with strict shapes,
a clear error on a mismatch, and no download unless asked (offline: one line naming --pretrained PATH)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluators.models import BACKBONES, build_model
from evaluators.warm_start import WarmStartError, WeightsSource


def _weights(folder: Path, backbone: str, width: float, name: str | None = None) -> Path:
    """A state dict of ``backbone`` at ``width`` (1000 classes, like a published checkpoint)."""
    torch.manual_seed(3)
    model = build_model(backbone, width, 1000)
    path = folder / f"{name or BACKBONES.get(backbone).variant(width)}.pth"
    torch.save(model.state_dict(), path)
    return path


def test_a_folder_of_weights_is_matched_by_variant_and_loaded_by_timm(tmp_path: Path) -> None:
    path = _weights(tmp_path, "mobilenetv3_small", 0.75)
    _weights(tmp_path, "lcnet", 0.5)
    (tmp_path / "notes.txt").write_text("not weights")
    source = WeightsSource.from_option(str(tmp_path))
    assert source is not None and len(source.files) == 2
    assert source.for_backbone("mobilenetv3_small_100") is None
    start = source.for_backbone(BACKBONES.get("mobilenetv3_small").variant(0.75))
    assert start is not None and start.file == str(path.resolve())
    model = build_model("mobilenetv3_small", 0.75, 4, weights=start)
    saved = torch.load(path, weights_only=True)
    assert torch.equal(model.conv_stem.weight, saved["conv_stem.weight"])
    assert model.get_classifier().out_features == 4, "the classifier is re-initialised for the task's classes"


def test_weights_of_another_width_fail_with_the_fix(tmp_path: Path) -> None:
    wrong = _weights(tmp_path, "mobilenetv3_small", 0.5, name="mobilenetv3_small_075")
    start = WeightsSource.from_option(str(wrong)).for_backbone("mobilenetv3_small_075")  # type: ignore[union-attr]
    with pytest.raises(WarmStartError, match="do not fit mobilenetv3_small_075.*size mismatch") as info:
        build_model("mobilenetv3_small", 0.75, 4, weights=start)
    assert "timm variant" in info.value.fix


def test_missing_paths_and_empty_folders_are_clear(tmp_path: Path) -> None:
    with pytest.raises(WarmStartError, match="no such file or folder"):
        WeightsSource.from_option(str(tmp_path / "nope.pth"))
    with pytest.raises(WarmStartError, match="no weights file"):
        WeightsSource.from_option(str(tmp_path))
    assert WeightsSource.from_option(None) is None


def test_imagenet_offline_stops_in_one_line_without_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    def unreachable(*args: object, **kwargs: object) -> socket.socket:
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.monotonic()
    with pytest.raises(WarmStartError, match="cannot reach") as info:
        WeightsSource.from_option("imagenet")
    assert time.monotonic() - start < 1.0
    assert "--pretrained PATH" in info.value.fix
