"""LossComputer: each term on/off, ArcFace parameters and gradients, KD arithmetic and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from evaluators.losses import KD_TEMPERATURE, LossComputer, distillation_loss
from spaces.candidate import LossMix

torch.set_num_threads(1)

CLASSES, DIM, BATCH = 3, 16, 12


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    embedding = torch.randn(BATCH, DIM, generator=generator, requires_grad=True)
    logits = torch.randn(BATCH, CLASSES, generator=generator, requires_grad=True)
    y = torch.arange(BATCH) % CLASSES
    teacher = torch.randn(BATCH, CLASSES, generator=generator)
    return embedding, logits, y, teacher


def _total(mix: LossMix, batch, seed: int = 0) -> tuple[float, dict[str, float]]:
    torch.manual_seed(seed)
    embedding, logits, y, teacher = batch
    total, parts = LossComputer(mix, CLASSES, DIM)(embedding, logits, y, teacher)
    return total.item(), parts


def test_ce_only_matches_torch_cross_entropy(batch):
    embedding, logits, y, _ = batch
    total, parts = LossComputer(LossMix(label_smoothing=0.1), CLASSES, DIM)(embedding, logits, y)
    expected = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(parts) == {"ce", "total"}


@pytest.mark.parametrize(
    "change",
    [
        {"arcface": 0.5},
        {"triplet": 1.0},
        {"kd": 1.0},
        {"label_smoothing": 0.2},
        {"ce": 2.0},
    ],
)
def test_each_weight_changes_the_loss(batch, change):
    base_total, base_parts = _total(LossMix(), batch)
    total, parts = _total(LossMix(**{**LossMix().__dict__, **change}), batch)
    assert total != pytest.approx(base_total)
    name = next(iter(change))
    if name in ("arcface", "triplet", "kd"):
        assert name in parts and name not in base_parts
        assert parts[name] > 0


def test_total_is_weighted_sum_of_parts(batch):
    mix = LossMix(ce=0.7, arcface=0.5, triplet=0.3, kd=2.0, label_smoothing=0.1)
    total, parts = _total(mix, batch)
    assert set(parts) == {"ce", "arcface", "triplet", "kd", "total"}
    weighted = sum(getattr(mix, name) * parts[name] for name in ("ce", "arcface", "triplet", "kd"))
    assert total == pytest.approx(weighted, rel=1e-5)
    assert parts["total"] == pytest.approx(total)


def test_arcface_parameters_are_exposed_and_receive_gradients(batch):
    embedding, logits, y, _ = batch
    computer = LossComputer(LossMix(ce=0.0, arcface=1.0), CLASSES, DIM)
    params = list(computer.parameters())
    assert len(params) == 1 and params[0].shape == (DIM, CLASSES)
    total, _ = computer(embedding, logits, y)
    total.backward()
    assert params[0].grad is not None and params[0].grad.abs().sum() > 0
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    assert list(LossComputer(LossMix(), CLASSES, DIM).parameters()) == []


def test_arcface_weight_stays_float32_under_half_inputs(batch):
    embedding, logits, y, _ = batch
    computer = LossComputer(LossMix(arcface=1.0), CLASSES, DIM)
    total, _ = computer(embedding.half(), logits.half(), y)
    assert total.dtype == torch.float32
    assert computer.arcface.W.dtype == torch.float32


def test_arcface_classifier_weight_predicts_like_arcface(batch):
    embedding, _, _, _ = batch
    computer = LossComputer(LossMix(arcface=1.0), CLASSES, DIM)
    cosine = F.normalize(embedding.detach(), dim=1) @ F.normalize(computer.arcface.W.detach(), dim=0)
    linear = embedding.detach() @ computer.arcface_classifier_weight().t()
    assert torch.equal(cosine.argmax(1), linear.argmax(1))
    with pytest.raises(ValueError, match="no ArcFace"):
        LossComputer(LossMix(), CLASSES, DIM).arcface_classifier_weight()


def test_triplet_gives_embedding_gradients_with_both_miners(batch):
    embedding, logits, y, _ = batch
    for mining in ("batch_hard", "semihard"):
        embedding.grad = None
        computer = LossComputer(LossMix(triplet=1.0), CLASSES, DIM, triplet_mining=mining)
        total, parts = computer(embedding, logits, y)
        total.backward()
        assert parts["triplet"] >= 0
        assert embedding.grad is not None
    with pytest.raises(ValueError, match="triplet_mining"):
        LossComputer(LossMix(triplet=1.0), CLASSES, DIM, triplet_mining="easy")


def test_kd_without_teacher_logits_is_a_clear_error(batch):
    embedding, logits, y, _ = batch
    computer = LossComputer(LossMix(kd=1.0), CLASSES, DIM)
    with pytest.raises(ValueError, match="teacher"):
        computer(embedding, logits, y)


def test_kd_does_not_backpropagate_into_teacher(batch):
    embedding, logits, y, teacher = batch
    teacher = teacher.clone().requires_grad_(True)
    total, _ = LossComputer(LossMix(kd=1.0), CLASSES, DIM)(embedding, logits, y, teacher)
    total.backward()
    assert teacher.grad is None and logits.grad is not None


def test_distillation_loss_formula():
    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    t = KD_TEMPERATURE
    p_teacher = torch.softmax(teacher / t, 1)
    expected = (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, 1))).sum(1).mean() * t * t
    assert float(distillation_loss(student, teacher)) == pytest.approx(float(expected), rel=1e-5)
    assert float(distillation_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(student, teacher[:, :2])


def test_shape_errors(batch):
    embedding, logits, y, _ = batch
    computer = LossComputer(LossMix(), CLASSES, DIM)
    with pytest.raises(ValueError, match="embedding"):
        computer(embedding[:, :4], logits, y)
    with pytest.raises(ValueError, match="logits"):
        computer(embedding, logits[:, :2], y)


def test_arcface_term_is_bitwise_pml_arcface_mean(batch):
    """The term reduces ArcFace's per-sample losses itself: exactly pml's own mean reduction."""
    from pytorch_metric_learning.losses import ArcFaceLoss

    embedding, logits, y, _ = batch
    computer = LossComputer(LossMix(ce=0.0, arcface=1.0), CLASSES, DIM)
    reference = ArcFaceLoss(num_classes=CLASSES, embedding_size=DIM, margin=28.6, scale=30.0)
    reference.W.data.copy_(computer.arcface.W.data)
    total, _ = computer(embedding, logits, y)
    assert torch.equal(total, reference(embedding, y))


def test_per_sample_distillation_averages_to_batchmean():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    per_sample = distillation_loss(student, teacher, reduction="none")
    assert per_sample.shape == (6,) and torch.all(per_sample >= 0)
    assert float(per_sample.mean()) == pytest.approx(float(distillation_loss(student, teacher)), rel=1e-6)
