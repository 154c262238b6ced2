"""Backbone registry: every backbone builds with a width multiplier, loads local weights, exports."""

from __future__ import annotations

import pytest
import torch

from evaluators.errors import HwsearchError
from evaluators.models import (
    build_model,
    features_and_logits,
    list_backbones,
    load_pretrained,
    prepare_for_export,
)
from spaces.esfair import BACKBONES

torch.set_num_threads(1)


def _settle(model: torch.nn.Module, resolution: int = 32) -> torch.nn.Module:
    """A few train-mode passes so BatchNorm statistics are realistic, then eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, resolution, resolution))
    return model.eval()


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_holds_every_backbone_the_spaces_name() -> None:
    from spaces import get_space, list_spaces

    named = set(BACKBONES)
    for name in list_spaces():
        module = __import__(get_space(name).fn.__module__, fromlist=["BACKBONES"])
        named |= set(module.BACKBONES)
    assert set(list_backbones()) == named


def test_unknown_backbone_fails_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="resnet50.*mobilenetv3_small"):
        build_model("resnet50", 1.0, 3)


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="width"):
        build_model("lcnet", 0.0, 3)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_backbone_builds_at_half_width_and_runs_at_32px(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(backbone, 0.5, 3)
    assert model.training
    assert _params(build_model(backbone, 0.35, 3)) < _params(model)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 3)
    _settle(model)
    embedding, logits = features_and_logits(model, x)
    assert embedding.ndim == 2 and embedding.shape[0] == 2
    assert embedding.shape[1] == model.get_classifier().in_features
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))


def test_mobileone_width_scales_stem_and_blocks_keeping_depthwise_convs() -> None:
    model = build_model("mobileone_s0", 0.5, 3)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 24  # 48 * 0.5
    depthwise = [c for c in convs if c.groups > 1]
    assert depthwise and all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert model.get_classifier().in_features == 512  # 1024 * 0.5


def test_prepare_for_export_reparameterizes_mobileone_without_touching_the_original() -> None:
    torch.manual_seed(0)
    model = _settle(build_model("mobileone_s0", 0.5, 3)).train()
    deployable = prepare_for_export(model)
    assert not deployable.training and model.training
    assert _params(deployable) < _params(model) / 2
    assert all(getattr(m, "reparam_conv", 0) is None for m in model.modules() if hasattr(m, "reparam_conv"))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert _relative_error(deployable(x), model.eval()(x)) < 1e-4


def test_prepare_for_export_is_an_equal_eval_copy_for_other_backbones() -> None:
    torch.manual_seed(0)
    model = _settle(build_model("mobilenetv3_small", 0.5, 3)).train()
    deployable = prepare_for_export(model)
    assert deployable is not model and not deployable.training and model.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(deployable(x), model.eval()(x))


def test_pretrained_local_state_dict_round_trips(tmp_path) -> None:
    torch.manual_seed(0)
    source = build_model("lcnet", 0.5, 3)
    path = tmp_path / "lcnet.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    torch.manual_seed(1)
    loaded = build_model("lcnet", 0.5, 3, pretrained=path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_pretrained_with_other_classes_skips_only_the_classifier(tmp_path) -> None:
    path = tmp_path / "lcnet1000.pth"
    torch.save(build_model("lcnet", 0.5, 1000).state_dict(), path)
    model = build_model("lcnet", 0.5, 3)
    report = load_pretrained(model, path)
    assert (report.mismatched, report.missing, report.unexpected) == (2, 2, 0)
    assert report.loaded == len(model.state_dict()) - 2


def test_missing_pretrained_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(HwsearchError, match="nowhere.pth.*does not exist"):
        build_model("lcnet", 0.5, 3, pretrained=tmp_path / "nowhere.pth")


def test_pretrained_of_another_backbone_is_refused(tmp_path) -> None:
    path = tmp_path / "lcnet.pth"
    torch.save(build_model("lcnet", 0.5, 3).state_dict(), path)
    with pytest.raises(HwsearchError, match="shares no tensor"):
        build_model("mobileone_s0", 0.5, 3, pretrained=path)


def test_pickled_whole_model_is_refused_without_unpickling_code(tmp_path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(build_model("lcnet", 0.5, 3), path)
    with pytest.raises(HwsearchError, match="cannot read pretrained weights"):
        build_model("lcnet", 0.5, 3, pretrained=path)
