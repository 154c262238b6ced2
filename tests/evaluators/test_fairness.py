"""Group-aware training methods: each changes what it should, ``none`` changes nothing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.data import iterate_batches, load_dataset
from evaluators.fairness import (
    FAIRNESS_METHODS,
    METHOD_BUILDERS,
    BalancedSampler,
    FairnessMethodError,
    GroupDRO,
    InverseFrequencyWeighting,
    fairness_training,
    inverse_frequency_table,
    inverse_frequency_weights,
)
from evaluators.losses import LossComputer
from evaluators.training import train
from spaces.candidate import LossMix

torch.set_num_threads(1)


def imbalanced(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and groups with a 5 % minority group and classes skewed differently per group."""
    rng = np.random.default_rng(seed)
    groups = rng.choice(3, size=n, p=[0.7, 0.25, 0.05])
    labels = np.where(rng.random(n) < np.array([0.8, 0.5, 0.3])[groups], 0, 1)
    return labels, groups


def cell_shares(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.bincount(groups * 2 + labels, minlength=6) / len(labels)


# The registry.


def test_registry_has_exactly_the_searched_methods() -> None:
    assert set(METHOD_BUILDERS) | {"none"} == set(FAIRNESS_METHODS)
    labels, groups = imbalanced()
    plain = fairness_training("none", labels, groups)
    assert plain.sampler is None and plain.weighting is None
    assert isinstance(fairness_training("balanced_sampler", labels, groups).sampler, BalancedSampler)
    assert isinstance(fairness_training("reweight", labels, groups).weighting, InverseFrequencyWeighting)
    dro = fairness_training("groupdro", labels, groups, num_groups=4).weighting
    assert isinstance(dro, GroupDRO) and dro.num_groups == 4 and dro.step_size == 0.01


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(FairnessMethodError) as info:
        fairness_training("fairmixup", *imbalanced())
    assert "fairmixup" in str(info.value) and all(name in str(info.value) for name in FAIRNESS_METHODS)


@pytest.mark.parametrize("method", [m for m in FAIRNESS_METHODS if m != "none"])
def test_methods_that_need_groups_refuse_a_single_group(method: str) -> None:
    labels = np.arange(50) % 2
    with pytest.raises(FairnessMethodError, match=f"{method}.*two or more groups"):
        fairness_training(method, labels, np.zeros(50, dtype=np.int64))
    assert fairness_training("none", labels, np.zeros(50, dtype=np.int64)).sampler is None


# balanced_sampler.


def test_balanced_sampler_draws_every_group_class_cell_equally() -> None:
    labels, groups = imbalanced()
    sampler = BalancedSampler(labels, groups)
    order = np.concatenate([sampler(seed) for seed in range(20)])
    assert sampler.num_cells == 6 and len(sampler(0)) == len(labels)
    before, after = cell_shares(labels, groups), cell_shares(labels[order], groups[order])
    assert before.min() < 0.02 and before.max() > 0.5
    np.testing.assert_allclose(after, np.full(6, 1 / 6), atol=0.01)
    minority = np.flatnonzero(groups == 2)
    assert np.bincount(order, minlength=len(labels))[minority].mean() > 20 * 3  # with replacement


def test_balanced_sampler_is_deterministic_for_a_seed() -> None:
    sampler = BalancedSampler(*imbalanced())
    assert np.array_equal(sampler(3), sampler(3))
    assert not np.array_equal(sampler(3), sampler(4))
    assert sampler(3).dtype == np.int64 and sampler(3).min() >= 0 and sampler(3).max() < 1000


def test_balanced_sampler_never_draws_an_empty_cell() -> None:
    labels = np.array([0, 0, 0, 1, 1, 0])
    groups = np.array([0, 0, 0, 0, 0, 1])  # group 1 has no class-1 sample
    order = np.concatenate([BalancedSampler(labels, groups)(seed) for seed in range(200)])
    shares = np.bincount(groups[order] * 2 + labels[order], minlength=4) / len(order)
    np.testing.assert_allclose(shares, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=0.03)


@pytest.fixture(scope="module")
def tiny_dataset(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_dataset(tiny_data, cache_root=tmp_path_factory.mktemp("cache"))


def test_iterate_batches_follows_the_sampler(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    split = tiny_dataset.splits["train"]
    sampler = BalancedSampler(split.labels, split.groups)
    seen_groups, steps = [], 0
    for epoch in range(10):
        order = sampler(epoch)
        batches = list(iterate_batches(split, 32, 20, shuffle=True, augment=True, seed=epoch, sampler=sampler))
        steps = len(batches)
        labels = np.concatenate([y.numpy() for _, y, _ in batches])
        groups = np.concatenate([g.numpy() for _, _, g in batches])
        assert np.array_equal(labels, split.labels[order]) and np.array_equal(groups, split.groups[order])
        seen_groups.append(groups)
    assert steps == math.ceil(len(split) / 20)
    shares = np.bincount(np.concatenate(seen_groups)) / sum(len(g) for g in seen_groups)
    plain = np.bincount(split.groups) / len(split)
    assert plain.min() < 0.15
    np.testing.assert_allclose(shares, np.full(3, 1 / 3), atol=0.05)


def test_iterate_batches_rejects_a_bad_sampler(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    split = tiny_dataset.splits["train"]
    with pytest.raises(ValueError, match="outside"):
        next(iterate_batches(split, 32, 8, shuffle=False, augment=False, seed=0,
                             sampler=lambda seed: np.array([0, len(split)])))


def test_iterate_batches_without_a_sampler_is_unchanged(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    split = tiny_dataset.splits["train"]
    plain = list(iterate_batches(split, 32, 20, shuffle=True, augment=True, seed=5))
    explicit = list(iterate_batches(split, 32, 20, shuffle=True, augment=True, seed=5, sampler=None))
    order = np.random.default_rng(5).permutation(len(split))
    assert np.array_equal(np.concatenate([y.numpy() for _, y, _ in plain]), split.labels[order])
    for a, b in zip(plain, explicit):
        assert all(torch.equal(u, v) for u, v in zip(a, b))


# reweight.


def test_reweight_weights_are_inverse_cell_frequencies_with_mean_one() -> None:
    labels, groups = imbalanced()
    weights = inverse_frequency_weights(labels, groups)
    assert weights.mean() == pytest.approx(1.0)
    counts = np.bincount(groups * 2 + labels, minlength=6)
    cells = groups * 2 + labels
    np.testing.assert_allclose(weights * counts[cells], len(labels) / 6)  # w * freq is constant
    totals = np.bincount(cells, weights=weights, minlength=6)
    np.testing.assert_allclose(totals, np.full(6, len(labels) / 6))  # every cell weighs the same
    table = inverse_frequency_table(np.array([0, 0, 1]), np.array([0, 0, 1]), num_groups=3, num_classes=2)
    assert table.shape == (3, 2) and table[0, 1] == 0 and table[2].sum() == 0
    assert table[1, 1] == pytest.approx(2 * table[0, 0])


def test_reweight_weights_each_sample_ce_in_the_loss() -> None:
    labels, groups = imbalanced(40, seed=1)
    weighting = InverseFrequencyWeighting(labels, groups)
    y, g = torch.from_numpy(labels), torch.from_numpy(groups)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 2, generator=generator)
    embedding = torch.randn(40, 8, generator=generator)
    total, parts = LossComputer(LossMix(label_smoothing=0.1), 2, 8)(embedding, logits, y, groups=g, weighting=weighting)
    weights = torch.from_numpy(inverse_frequency_weights(labels, groups)).float()
    expected = (weights * torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1, reduction="none")).mean()
    assert total.item() == pytest.approx(expected.item(), rel=1e-6) and parts["ce"] == pytest.approx(total.item())
    plain, _ = LossComputer(LossMix(label_smoothing=0.1), 2, 8)(embedding, logits, y)
    assert total.item() != pytest.approx(plain.item())


# groupdro.


def test_groupdro_weight_rises_on_the_worst_group() -> None:
    dro = GroupDRO(3)
    losses = torch.tensor([0.2, 0.2, 0.5, 0.5, 2.0, 2.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    history = [dro.weights]
    for _ in range(50):
        dro.batch_weights(losses, torch.zeros(6, dtype=torch.long), groups)
        history.append(dro.weights)
    q = np.array(history)
    assert np.all(np.diff(q[:, 2]) > 0) and np.all(np.diff(q[:, 0]) < 0)
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    expected = np.exp(0.01 * 50 * np.array([0.2, 0.5, 2.0]))
    np.testing.assert_allclose(q[-1], expected / expected.sum())  # q_g ∝ exp(eta * sum of its losses)
    assert dro.steps == 50


def test_groupdro_batch_weights_and_absent_groups() -> None:
    dro = GroupDRO(3)
    dro.load_state_dict({"q": [0.2, 0.3, 0.5], "steps": 7})
    weights = dro.batch_weights(torch.tensor([1.0, 3.0, 1.0]), torch.zeros(3, dtype=torch.long), torch.tensor([0, 0, 1]))
    q = dro.weights
    assert q[2] == pytest.approx(0.5)  # absent from the batch: keeps its weight
    assert q[0] / q[1] == pytest.approx((0.2 / 0.3) * math.exp(0.01 * (2.0 - 1.0)))
    assert q[0] + q[1] == pytest.approx(0.5)
    assert weights.sum().item() == pytest.approx(1.0)
    share = q[0] / (q[0] + q[1])
    np.testing.assert_allclose(weights.numpy(), [share / 2, share / 2, 1 - share], rtol=1e-6)
    assert dro.state_dict()["steps"] == 8


def test_groupdro_size_adjustment_favours_small_groups() -> None:
    plain = GroupDRO(2)
    adjusted = GroupDRO(2, size_adjustment=1.0, group_counts=np.array([900, 100]))
    for dro in (plain, adjusted):
        dro.batch_weights(torch.ones(4), torch.zeros(4, dtype=torch.long), torch.tensor([0, 0, 1, 1]))
    assert plain.weights[1] == pytest.approx(0.5) and adjusted.weights[1] > 0.5
    with pytest.raises(ValueError, match="positive training count"):
        GroupDRO(2, size_adjustment=1.0)


def test_groupdro_rejects_bad_state() -> None:
    with pytest.raises(ValueError, match="positive weights summing to 1"):
        GroupDRO(2).load_state_dict({"q": [0.7, 0.7], "steps": 0})


# Training with the methods.

SIDE, N = 8, 240


def hard_group_task(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Two classes told apart by mean brightness; group 1 (25 %) has almost no signal, so its loss stays high."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % 2
    g = (torch.rand(N, generator=generator) < 0.25).long()
    signal = torch.where(g == 1, 0.02, 0.6) * (2.0 * y - 1.0)
    x = signal.view(N, 1, 1, 1) + torch.randn(N, 3, SIDE, SIDE, generator=generator)
    return [(x[i:i + 24], y[i:i + 24], g[i:i + 24]) for i in range(0, N, 24)]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIDE * SIDE, 16), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def tiny_features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    embedding = model.body(x)
    return embedding, model.head(embedding)


def train_tiny(**kwargs):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    data = hard_group_task()
    return train(Tiny(), lambda epoch: data, loss_mix=LossMix(), epochs=4, lr=3e-3,
                 features_and_logits=tiny_features_and_logits, seed=0, **kwargs)


def state(model: nn.Module) -> list[torch.Tensor]:
    return [t.clone() for t in model.state_dict().values()]


def test_groupdro_training_raises_the_weight_of_the_hard_group() -> None:
    dro = GroupDRO(2)
    result = train_tiny(group_weighting=dro)
    assert dro.steps == result.steps == 40
    assert dro.weights[1] > 0.53, dro.weights  # the hard group's loss stays higher (0.540 here)
    again = GroupDRO(2)
    assert all(torch.equal(a, b) for a, b in zip(state(result.model), state(train_tiny(group_weighting=again).model)))
    np.testing.assert_array_equal(dro.weights, again.weights)


def test_weighted_training_differs_from_plain_and_plain_is_unchanged() -> None:
    plain = state(train_tiny().model)
    assert all(torch.equal(a, b) for a, b in zip(plain, state(train_tiny(group_weighting=None).model)))
    data = hard_group_task()
    labels = torch.cat([y for _, y, _ in data]).numpy()
    groups = torch.cat([g for _, _, g in data]).numpy()
    reweighted = state(train_tiny(group_weighting=InverseFrequencyWeighting(labels, groups)).model)
    assert any(not torch.equal(a, b) for a, b in zip(plain, reweighted))


@pytest.mark.parametrize("mix", [LossMix(arcface=0.5, triplet=0.5, label_smoothing=0.1), LossMix(kd=1.0)])
def test_every_per_sample_term_is_reweighted(mix: LossMix) -> None:
    generator = torch.Generator().manual_seed(0)
    embedding, logits, teacher = torch.randn(12, 8, generator=generator), torch.randn(12, 3, generator=generator), torch.randn(12, 3, generator=generator)
    y, g = torch.arange(12) % 3, (torch.arange(12) >= 8).long()

    class OnlyGroupOne:
        def batch_weights(self, losses, labels, groups):  # type: ignore[no-untyped-def]
            return (groups == 1).to(losses.dtype) / int((groups == 1).sum())

    class Uniform:
        def batch_weights(self, losses, labels, groups):  # type: ignore[no-untyped-def]
            return torch.full_like(losses, 1 / len(losses))

    def parts(**kwargs):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        return LossComputer(mix, 3, 8)(embedding, logits, y, teacher, **kwargs)[1]

    plain, uniform = parts(), parts(groups=g, weighting=Uniform())
    group_one = parts(groups=g, weighting=OnlyGroupOne())
    torch.manual_seed(0)
    subset = LossComputer(mix, 3, 8)(embedding[8:], logits[8:], y[8:], teacher[8:])[1]
    for name in plain:
        assert uniform[name] == pytest.approx(plain[name], rel=1e-5), name
    for name in ("ce", "arcface", "kd"):
        if name in plain:
            assert group_one[name] == pytest.approx(subset[name], rel=1e-5), name
    if "triplet" in plain:
        assert group_one["triplet"] == pytest.approx(plain["triplet"])  # a triplet term is not per sample


def test_a_weighting_needs_the_groups() -> None:
    with pytest.raises(ValueError, match="groups"):
        LossComputer(LossMix(), 2, 4)(torch.randn(3, 4), torch.randn(3, 2), torch.tensor([0, 1, 0]),
                                      weighting=GroupDRO(2))


# The pipeline hook.


@pytest.mark.parametrize("method", FAIRNESS_METHODS)
def test_each_rung_trains_with_the_method_and_group_dro_carries_its_weights(
    tiny_dataset, method: str, monkeypatch, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import evaluators.fairness
    from evaluators.contracts import LatencySettings
    from evaluators.latency.fake import FakeLatencyBackend
    from evaluators.pipeline import RungJob, TrialContext, run_rung
    from spaces import Candidate, get_space

    made = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(fairness_training(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(evaluators.fairness, "fairness_training", recording)
    ctx = TrialContext(dataset=tiny_dataset, task=get_space("esfair").task, latency_backend=FakeLatencyBackend(),
                       latency_settings=LatencySettings(), latency_cache=None)
    candidate = Candidate(backbone="mobilenetv3_small", width=0.35, resolution=32, epochs=1, finetune_epochs=1,
                          prune_ratio=0.3, batch_size=16, fairness_method=method)
    first = run_rung(candidate, ctx, tmp_path, RungJob(rung=0, epochs=1, final=False, screen=True))
    assert first.metrics is not None and len(made) == 1 and made[0].method == method
    steps = math.ceil(len(tiny_dataset.splits["train"]) / 16)
    if method == "groupdro":
        assert made[0].weighting.steps == 2 * steps  # training and the fine-tune share q
    run_rung(candidate, ctx, tmp_path, RungJob(rung=1, epochs=2, final=True, start=first.checkpoint))
    assert len(made) == 2 and made[1].method == method
    if method == "groupdro":
        assert made[1].weighting.steps == 3 * steps, "the next rung continues Group DRO's weights"
