"""Uniform structured pruning: weight-independent shapes on every backbone; complexity figures."""

from __future__ import annotations

import pytest
import torch

from evaluators.complexity import count_macs, count_params
from evaluators.models import build_model, prepare_for_export
from evaluators.pruning import IMPORTANCES, ROUND_TO, prune_uniform
from spaces.esfair import BACKBONES

torch.set_num_threads(1)

EXAMPLE = torch.zeros(1, 3, 32, 32)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _scrambled(backbone: str, seed: int) -> torch.nn.Module:
    """A copy with its own random weights and BatchNorm statistics (as if trained differently)."""
    torch.manual_seed(seed)
    model = build_model(backbone, 0.5, 3)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(torch.rand_like(tensor) * 2)
    return model


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_pruned_shapes_do_not_depend_on_weights(backbone: str) -> None:
    first = prune_uniform(_scrambled(backbone, 0), 0.4, EXAMPLE)
    second = prune_uniform(_scrambled(backbone, 1), 0.4, EXAMPLE)
    assert _shapes(first) == _shapes(second)
    unpruned = count_params(build_model(backbone, 0.5, 3))
    # Every layer keeps ~60 % of its channels: weights shrink to ~(0.6)^2 = 36 %.
    assert 0.25 < count_params(first) / unpruned < 0.5
    assert first.get_classifier().out_features == 3
    assert first.training
    assert first(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with torch.no_grad():
        assert first.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_pruned_channel_counts_are_rounded() -> None:
    pruned = prune_uniform(build_model("mobilenetv3_small", 0.5, 3), 0.3, EXAMPLE)
    convs = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % ROUND_TO == 0 for c in convs)


def test_mobileone_is_reparameterized_before_pruning() -> None:
    model = build_model("mobileone_s0", 0.5, 3)
    pruned = prune_uniform(model, 0.25, EXAMPLE)
    blocks = [m for m in pruned.modules() if hasattr(m, "reparam_conv")]
    assert blocks and all(b.reparam_conv is not None for b in blocks)
    assert all(m.reparam_conv is None for m in model.modules() if hasattr(m, "reparam_conv"))


def test_ratio_zero_returns_an_equal_copy() -> None:
    model = build_model("lcnet", 0.5, 3)
    same = prune_uniform(model, 0.0, EXAMPLE)
    assert same is not model
    for key, value in model.state_dict().items():
        torch.testing.assert_close(same.state_dict()[key], value)


def test_pruning_leaves_the_input_model_and_its_batchnorm_statistics_alone() -> None:
    model = build_model("mobilenetv3_small", 0.5, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_uniform(model, 0.5, torch.randn(4, 3, 32, 32))
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_importance_changes_which_channels_go_not_how_many() -> None:
    model = _scrambled("mobilenetv2", 0)
    pruned = {name: prune_uniform(model, 0.5, EXAMPLE, importance=name) for name in IMPORTANCES}
    shapes = {name: _shapes(m) for name, m in pruned.items()}
    assert all(s == shapes["magnitude"] for s in shapes.values())
    stem = {name: m.conv_stem.weight for name, m in pruned.items()}
    assert not torch.equal(stem["magnitude"], stem["random"])


@pytest.mark.parametrize("ratio", [-0.1, 1.0])
def test_ratio_out_of_range_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio"):
        prune_uniform(build_model("lcnet", 0.5, 3), ratio, EXAMPLE)


def test_unknown_importance_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="magnitude"):
        prune_uniform(build_model("lcnet", 0.5, 3), 0.3, EXAMPLE, importance="taylor")


def test_complexity_figures_follow_pruning_and_resolution() -> None:
    model = build_model("mobilenetv3_small", 0.5, 3)
    pruned = prune_uniform(model, 0.5, EXAMPLE)
    assert count_params(model) == sum(p.numel() for p in model.parameters())
    assert 0.15 < count_params(pruned) / count_params(model) < 0.4
    assert 0.15 < count_macs(pruned, 32) / count_macs(model, 32) < 0.4
    # Convolutions scale with the pixel count; the pooled head does not.
    assert 3.0 < count_macs(model, 128) / count_macs(model, 64) <= 4.0
    assert isinstance(count_macs(model, 32), int)


def test_complexity_counts_mobileone_as_deployed() -> None:
    model = build_model("mobileone_s0", 0.5, 3)
    deployable = prepare_for_export(model)
    assert count_params(model) == sum(p.numel() for p in deployable.parameters())
    assert count_params(model) < sum(p.numel() for p in model.parameters()) / 2
    assert model.training
