"""Training loop, fine-tuning and the cached KD teacher, on a tiny separable synthetic task."""

from __future__ import annotations

import copy
import math
import json
import threading
import warnings

import pytest
import timm
import torch
from torch import nn

from evaluators.teacher import get_or_train_teacher, teacher_accuracy, teacher_paths
from evaluators.training import finetune_mix, resize_to, train, warmup_cosine
from spaces.candidate import LossMix

torch.set_num_threads(1)

CLASSES, SIDE, BATCH, N = 3, 32, 16, 96
COLOURS = torch.tensor([[0.9, 0.2, 0.2], [0.2, 0.8, 0.2], [0.2, 0.3, 0.9]])


def _shapes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class 0 squares, 1 discs, 2 crosses, each in its own colour, jittered; 2 background groups."""
    generator = torch.Generator().manual_seed(seed)
    ys = torch.arange(n) % CLASSES
    groups = (torch.rand(n, generator=generator) < 0.3).long()
    rows = torch.arange(SIDE).view(SIDE, 1).float()
    cols = torch.arange(SIDE).view(1, SIDE).float()
    images = torch.empty(n, 3, SIDE, SIDE)
    for i in range(n):
        cy, cx = (torch.randint(11, 21, (2,), generator=generator)).float()
        r = float(torch.randint(6, 10, (1,), generator=generator))
        dy, dx = (rows - cy).abs(), (cols - cx).abs()
        if ys[i] == 0:
            mask = (dy <= r) & (dx <= r)
        elif ys[i] == 1:
            mask = dy**2 + dx**2 <= r**2
        else:
            mask = ((dy <= 2) & (dx <= r)) | ((dx <= 2) & (dy <= r))
        background = 0.25 if groups[i] else 0.6
        image = torch.full((3, SIDE, SIDE), background)
        image[:, mask] = COLOURS[ys[i]].view(3, 1)
        images[i] = image + 0.05 * torch.randn(3, SIDE, SIDE, generator=generator)
    return images, ys, groups


DATA = _shapes(N, seed=0)


def batches(epoch: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled batches of DATA, seeded by the epoch."""
    x, y, g = DATA
    order = torch.randperm(N, generator=torch.Generator().manual_seed(100 + epoch))
    return [(x[idx], y[idx], g[idx]) for idx in order.split(BATCH)]


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    embedding = model.forward_head(model.forward_features(x), pre_logits=True)
    return embedding, model.get_classifier()(embedding)


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("mobilenetv3_small_050", num_classes=CLASSES)


def run(model: nn.Module, mix: LossMix = LossMix(), **kwargs):
    options = {"epochs": 2, "lr": 3e-3, "features_and_logits": features_and_logits, "seed": 0}
    options.update(kwargs)
    return train(model, batches, loss_mix=mix, **options)


def test_training_reduces_the_loss():
    model = make_model()
    reports = []
    result = run(model, LossMix(label_smoothing=0.1), epochs=4, progress=lambda e, parts: reports.append(e))
    assert reports == [0, 1, 2, 3]
    assert len(result.history) == 4 and result.steps == 4 * N // BATCH
    first, last = result.history[0]["total"], result.history[-1]["total"]
    assert last < 0.7 * first, result.history
    assert result.model is model and not model.training and not result.ema
    x, y, _ = DATA
    model.train()  # batch statistics: 24 steps do not settle BatchNorm's running averages
    with torch.no_grad():
        accuracy = (features_and_logits(model, x)[1].argmax(1) == y).float().mean()
    assert accuracy > 1 / CLASSES + 0.3


def test_training_is_deterministic_on_cpu_given_a_seed():
    start = make_model()
    a = run(copy.deepcopy(start), LossMix(arcface=0.5, triplet=0.5), epochs=1)
    b = run(copy.deepcopy(start), LossMix(arcface=0.5, triplet=0.5), epochs=1)
    assert a.history == b.history
    for (name, left), right in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(left, right), name


def test_channels_last_training_learns_the_same_and_hands_back_contiguous_weights():
    start = make_model()
    fast = run(copy.deepcopy(start), ema=True, epochs=2)
    plain = run(copy.deepcopy(start), ema=True, epochs=2, channels_last=False)
    for result in (fast, plain):
        assert all(t.is_contiguous() for t in result.model.state_dict().values())
    for left, right in zip(fast.history, plain.history):
        assert left["total"] == pytest.approx(right["total"], rel=0.05)


def test_a_model_with_a_strided_pointwise_convolution_trains_contiguous():
    """torch 2.14 corrupts the heap training MobileOne x0.35's stem in channels_last; it must not crash."""
    from evaluators.models import build_model
    from evaluators.training import channels_last_safe

    torch.manual_seed(0)
    model = build_model("mobileone_s0", 0.35, CLASSES)
    assert not channels_last_safe(model) and channels_last_safe(make_model())
    x, y, g = DATA
    resized = torch.nn.functional.interpolate(x[:BATCH], size=64)
    result = train(model, lambda epoch: [(resized, y[:BATCH], g[:BATCH])], loss_mix=LossMix(), epochs=1, lr=3e-3,
                   seed=0)
    assert math.isfinite(result.history[0]["total"])


def test_ema_copy_is_returned_when_asked():
    model = make_model()
    result = run(model, ema=True, epochs=1)
    assert result.ema and result.model is not model
    assert not result.model.training
    trained, averaged = model.state_dict(), result.model.state_dict()
    assert trained.keys() == averaged.keys()
    assert any(not torch.equal(trained[k], averaged[k]) for k in trained if trained[k].is_floating_point())


def test_kd_uses_teacher_at_its_resolution():
    seen: list[tuple[int, ...]] = []
    teacher = make_model(seed=1)
    teacher.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    result = run(make_model(), LossMix(kd=1.0), epochs=1, teacher=teacher, teacher_resolution=48)
    assert set(seen) == {(48, 48)} and len(seen) == result.steps
    assert "kd" in result.history[0] and result.history[0]["kd"] > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_kd_without_teacher_is_an_error():
    with pytest.raises(ValueError, match="teacher"):
        run(make_model(), LossMix(kd=1.0))


def test_arcface_only_installs_the_arcface_head_as_classifier():
    model = make_model()
    result = run(model, LossMix(ce=0.0, arcface=1.0), epochs=1, ema=True)
    assert result.classifier_from_arcface
    for shipped in (model, result.model):
        classifier = shipped.get_classifier()
        assert torch.all(classifier.bias == 0)
        assert torch.allclose(classifier.weight.norm(dim=1), torch.full((CLASSES,), 30.0))


def test_finetune_keeps_only_ce_and_kd():
    assert finetune_mix(LossMix(ce=0.5, arcface=1.0, triplet=0.3, kd=2.0, label_smoothing=0.1)) == LossMix(
        ce=0.5, kd=2.0, label_smoothing=0.1
    )
    assert finetune_mix(LossMix(ce=0.0, arcface=1.0)) == LossMix(ce=1.0)
    result = train(
        make_model(), batches, loss_mix=finetune_mix(LossMix(arcface=1.0, triplet=1.0)), epochs=1, lr=1e-3,
        features_and_logits=features_and_logits, seed=0,
    )
    assert set(result.history[0]) == {"ce", "total"}
    assert result.loss_mix == LossMix()


def test_unsized_batches_need_a_steps_hint():
    def generated(epoch: int):
        return iter(batches(epoch))

    with pytest.raises(ValueError, match="steps_per_epoch"):
        train(make_model(), generated, loss_mix=LossMix(), epochs=1, lr=1e-3, features_and_logits=features_and_logits)
    result = train(
        make_model(), generated, loss_mix=LossMix(), epochs=1, lr=1e-3,
        features_and_logits=features_and_logits, steps_per_epoch=2,
    )
    assert result.steps == N // BATCH


def test_empty_epoch_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        train(make_model(), lambda epoch: [], loss_mix=LossMix(), epochs=1, lr=1e-3, features_and_logits=features_and_logits)


def test_warmup_cosine_schedule_shape():
    multiplier = warmup_cosine(100)
    values = [multiplier(s) for s in range(110)]
    assert values[0] == pytest.approx(0.2) and values[4] == pytest.approx(1.0)
    assert all(0 < v <= 1 for v in values[:5])
    assert all(a > b for a, b in zip(values[4:101], values[5:101]))
    assert 0 < values[99] < 0.01 and values[100] == 0.0 and values[109] == 0.0
    assert warmup_cosine(1)(0) == 1.0


def test_resize_to():
    x = torch.rand(2, 3, 32, 32)
    assert resize_to(x, None) is x and resize_to(x, 32) is x
    assert resize_to(x, 16).shape == (2, 3, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_with_amp():
    result = run(make_model(), LossMix(arcface=0.5, kd=1.0), device="cuda", teacher=make_model(1), epochs=2)
    assert next(result.model.parameters()).device.type == "cuda"
    assert result.history[-1]["total"] < result.history[0]["total"]


# The KD teacher cache.


class CountingBatches:
    """A batch source that counts how often training asked for an epoch."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, epoch: int):
        with self._lock:
            self.calls += 1
        return batches(epoch)[:3]


def get_teacher(cache_dir, source, fingerprint: str = "data-v1", name: str = "mobilenetv3_small_050") -> nn.Module:
    return get_or_train_teacher(
        cache_dir, num_classes=CLASSES, train_batches=source, epochs=1, resolution=24,
        backbone_builder=lambda n: timm.create_model(name, num_classes=n), data_fingerprint=fingerprint,
        seed=0, lr=3e-3, backbone=name, features_and_logits=features_and_logits,
    )


def test_teacher_is_cached_and_reused(tmp_path):
    source = CountingBatches()
    first = get_teacher(tmp_path, source)
    assert source.calls == 1
    weights = sorted(tmp_path.glob("teacher-*.pt"))
    assert len(weights) == 1
    record = json.loads(weights[0].with_suffix(".json").read_text())
    assert record["description"]["resolution"] == 24
    assert record["description"]["data_fingerprint"] == "data-v1"
    mtime = weights[0].stat().st_mtime_ns

    second = get_teacher(tmp_path, source)
    assert source.calls == 1 and weights[0].stat().st_mtime_ns == mtime
    assert not second.training and not any(p.requires_grad for p in second.parameters())
    for left, right in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(left, right)

    get_teacher(tmp_path, source, fingerprint="data-v2")
    assert source.calls == 2 and len(list(tmp_path.glob("teacher-*.pt"))) == 2


def test_teacher_cache_keys_on_the_built_architecture(tmp_path):
    source = CountingBatches()
    get_teacher(tmp_path, source, name="mobilenetv3_small_050")
    get_or_train_teacher(
        tmp_path, num_classes=CLASSES, train_batches=source, epochs=1, resolution=24, data_fingerprint="data-v1",
        backbone_builder=lambda n: timm.create_model("mobilenetv3_small_075", num_classes=n),
        backbone="mobilenetv3_small_050", lr=3e-3, features_and_logits=features_and_logits,
    )
    assert source.calls == 2
    descriptions = [json.loads(p.read_text())["description"] for p in tmp_path.glob("teacher-*.json")]
    assert len({d["architecture"]["state_shapes_sha256"] for d in descriptions}) == 2


def test_teacher_leaves_the_callers_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    get_teacher(tmp_path, CountingBatches())
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("damaged", ["weights", "json"])
def test_corrupt_teacher_cache_is_retrained_with_a_warning(tmp_path, damaged):
    source = CountingBatches()
    get_teacher(tmp_path, source)
    weights = next(tmp_path.glob("teacher-*.pt"))
    target = weights if damaged == "weights" else weights.with_suffix(".json")
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.warns(RuntimeWarning, match="retraining"):
        teacher = get_teacher(tmp_path, source)
    assert source.calls == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_teacher(tmp_path, source)
    assert source.calls == 2
    assert teacher(torch.rand(1, 3, 24, 24)).shape == (1, CLASSES)


def test_concurrent_callers_train_the_teacher_once(tmp_path):
    source = CountingBatches()
    results: list[nn.Module] = []
    threads = [threading.Thread(target=lambda: results.append(get_teacher(tmp_path, source))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and source.calls == 1
    description = json.loads(next(tmp_path.glob("teacher-*.json")).read_text())["description"]
    assert teacher_paths(tmp_path, description)[0].exists()


def test_teacher_accuracy_is_the_share_of_right_answers_and_holds_the_step_context() -> None:
    class AlwaysFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([1.0, 0.0]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(len(x), 2)

    entered: list[int] = []

    class Counting:
        def __enter__(self) -> None:
            entered.append(1)

        def __exit__(self, *exc: object) -> None:
            return None

    x = torch.zeros(4, 3, 8, 8)
    batches = [(x, torch.tensor([0, 0, 1, 1]), torch.zeros(4)), (x, torch.tensor([0, 1, 1, 1]), torch.zeros(4))]
    assert teacher_accuracy(AlwaysFirst(), batches, step_context=Counting) == 3 / 8
    assert len(entered) == 2
    assert teacher_accuracy(AlwaysFirst(), []) == 0.0
