"""The training loss of a Candidate: a weighted mix of CE, ArcFace, triplet and distillation.

One :class:`LossComputer` per training run turns a :class:`~spaces.candidate.LossMix` into a
single scalar. Which tensor each term reads:

- ``ce``: cross-entropy with label smoothing on the model's own classifier logits.
- ``arcface``: additive angular margin loss (pytorch-metric-learning ``ArcFaceLoss``) on the
  embedding (the classifier's input). It owns a ``(embedding_dim, num_classes)`` weight matrix,
  a parameter of this module: give ``LossComputer.parameters()`` to the optimizer.
- ``triplet``: ``TripletMarginLoss`` on the embedding, triplets mined in the batch
  (batch-hard by default, or semi-hard).
- ``kd``: knowledge distillation, ``KL(softmax(t / T) || softmax(s / T)) * T**2`` from a
  teacher's logits, ``T = 4`` (Hinton et al.; the ``T**2`` keeps gradients comparable to CE).

All terms are computed in float32 even under autocast (ArcFace would otherwise cast its weight
matrix to half precision in place).

Group-aware reduction (``forward(..., groups=g, weighting=w)``, see ``evaluators.fairness``): the
per-sample terms, CE, ArcFace and KD, are computed per sample and reduced with the weights that
:class:`SampleWeighting` gives for the batch instead of the plain mean. The triplet term is a loss
over mined triplets, not samples, so it keeps its own mean and is not reweighted. Without a
weighting the computation is exactly the plain one.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers
from torch import nn

from spaces.candidate import LossMix

KD_TEMPERATURE = 4.0
"""Softmax temperature of the distillation term."""

LOSS_NAMES: tuple[str, ...] = ("ce", "arcface", "triplet", "kd")
"""Names of the loss terms, as in :class:`LossMix` and in the ``parts`` dictionaries."""

TripletMining = Literal["batch_hard", "semihard"]

class SampleWeighting(Protocol):
    """How a batch's per-sample losses are reduced to one loss (a group-aware training method).

    ``batch_weights`` is called exactly once per training step, so a stateful method (Group DRO)
    may update itself there.
    """

    def batch_weights(self, losses: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Non-negative ``(B,)`` weights ``a`` such that the batch loss is ``sum_i a_i * loss_i``.

        Args:
            losses: ``(B,)`` detached per-sample loss: the weighted sum of the per-sample terms.
            labels: ``(B,)`` class indices.
            groups: ``(B,)`` group indices.
        """
        ...


class LossComputer(nn.Module):
    """Weighted sum of the losses a :class:`LossMix` enables.

    Invariants: a term whose weight is 0 is neither built nor computed and is absent from
    ``parts``; the returned ``total`` equals ``sum(weight[k] * parts[k])`` over the enabled terms,
    with or without a :class:`SampleWeighting` (each part is then its reweighted value);
    ``parameters()`` holds exactly the ArcFace weight matrix when ``arcface > 0`` and nothing
    otherwise.

    Args:
        loss_mix: Weights of the terms and the label smoothing of CE.
        num_classes: Number of classes (width of the logits).
        embedding_dim: Width of the embedding the classifier reads.
        arcface_margin_deg: ArcFace additive angular margin in degrees (28.6 deg = 0.5 rad).
        arcface_scale: ArcFace logit scale (30 suits few classes better than the usual 64).
        triplet_margin: Margin of the triplet loss on L2-normalised embeddings.
        triplet_mining: ``batch_hard`` (hardest positive and negative per anchor) or
            ``semihard`` (negatives farther than the positive but within the margin).
    """

    def __init__(
        self,
        loss_mix: LossMix,
        num_classes: int,
        embedding_dim: int,
        *,
        arcface_margin_deg: float = 28.6,
        arcface_scale: float = 30.0,
        triplet_margin: float = 0.2,
        triplet_mining: TripletMining = "batch_hard",
    ) -> None:
        super().__init__()
        if num_classes < 2 or embedding_dim < 1:
            raise ValueError(f"need num_classes >= 2 and embedding_dim >= 1, got {num_classes}, {embedding_dim}")
        self.loss_mix = loss_mix
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.cross_entropy = nn.CrossEntropyLoss(label_smoothing=loss_mix.label_smoothing)
        self.arcface: nn.Module | None = None
        if loss_mix.arcface > 0:
            self.arcface = pml_losses.ArcFaceLoss(
                num_classes=num_classes, embedding_size=embedding_dim,
                margin=arcface_margin_deg, scale=arcface_scale, reducer=pml_reducers.DoNothingReducer(),
            )
        self.triplet: nn.Module | None = None
        self.miner: nn.Module | None = None
        if loss_mix.triplet > 0:
            self.triplet = pml_losses.TripletMarginLoss(margin=triplet_margin)
            if triplet_mining == "batch_hard":
                self.miner = pml_miners.BatchHardMiner()
            elif triplet_mining == "semihard":
                self.miner = pml_miners.TripletMarginMiner(margin=triplet_margin, type_of_triplets="semihard")
            else:
                raise ValueError(f"triplet_mining={triplet_mining!r} is not batch_hard or semihard")

    def weights(self) -> dict[str, float]:
        """The enabled terms and their weights, in :data:`LOSS_NAMES` order."""
        return {name: getattr(self.loss_mix, name) for name in LOSS_NAMES if getattr(self.loss_mix, name) > 0}

    def arcface_classifier_weight(self) -> torch.Tensor:
        """A ``(num_classes, embedding_dim)`` linear-classifier weight that predicts as ArcFace does.

        ArcFace classifies by ``argmax_c cos(e, W_c)``; a bias-free linear layer with rows
        ``scale * W_c / |W_c|`` computes ``scale * |e| * cos(e, W_c)``, whose argmax is the same
        for every embedding ``e``. Used to give the shipped classifier ArcFace's decision when
        CE did not train it.

        Raises:
            ValueError: When this mix has no ArcFace term.
        """
        if self.arcface is None:
            raise ValueError(f"loss mix {self.loss_mix.describe()!r} has no ArcFace term")
        weight = self.arcface.W.detach().t()
        return F.normalize(weight, dim=1) * self.arcface.scale

    def forward(
        self,
        embedding: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        *,
        groups: torch.Tensor | None = None,
        weighting: SampleWeighting | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and the value of each enabled term before its mix weight.

        Args:
            embedding: ``(N, embedding_dim)`` classifier input.
            logits: ``(N, num_classes)`` classifier output.
            y: ``(N,)`` int64 class indices.
            teacher_logits: ``(N, num_classes)`` teacher output; required when ``kd > 0``,
                ignored otherwise. Treated as a constant (detached).
            groups: ``(N,)`` int64 group indices; required with ``weighting``.
            weighting: Reduction of the per-sample terms (see the module docstring); ``None``
                takes the plain mean.

        Returns:
            ``(total, parts)``: the differentiable weighted sum, and ``{name: float}`` holding
            each enabled term (reduced as asked) before its mix weight, plus ``"total"``.

        Raises:
            ValueError: When ``kd > 0`` and no teacher logits are given, ``weighting`` comes
                without ``groups``, or shapes disagree.
        """
        if embedding.dim() != 2 or embedding.shape[1] != self.embedding_dim:
            raise ValueError(f"embedding shape {tuple(embedding.shape)} is not (N, {self.embedding_dim})")
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits shape {tuple(logits.shape)} is not (N, {self.num_classes})")
        embedding = embedding.float()
        logits = logits.float()
        if self.loss_mix.kd > 0 and teacher_logits is None:
            raise ValueError(
                f"loss mix {self.loss_mix.describe()!r} has kd={self.loss_mix.kd:g} but no teacher "
                "logits were given: pass teacher_logits, or set kd=0"
            )
        teacher = teacher_logits.detach().float() if self.loss_mix.kd > 0 and teacher_logits is not None else None
        if weighting is None:
            terms = self._mean_terms(embedding, logits, y, teacher)
        else:
            if groups is None or groups.shape != y.shape:
                raise ValueError("a sample weighting needs the batch's groups, one per sample")
            terms = self._weighted_terms(embedding, logits, y, teacher, groups, weighting)
        weights = self.weights()
        total = sum((weights[name] * value for name, value in terms.items()), logits.new_zeros(()))
        parts = {name: float(value.detach()) for name, value in terms.items()}
        parts["total"] = float(total.detach())
        return total, parts

    def _mean_terms(
        self, embedding: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Every enabled term, each by its own batch mean, in :data:`LOSS_NAMES` order."""
        terms: dict[str, torch.Tensor] = {}
        if self.loss_mix.ce > 0:
            terms["ce"] = self.cross_entropy(logits, y)
        if self.arcface is not None:
            terms["arcface"] = torch.mean(self._arcface_losses(embedding, y))
        if self.triplet is not None and self.miner is not None:
            terms["triplet"] = self.triplet(embedding, y, self.miner(embedding, y))
        if teacher is not None:
            terms["kd"] = distillation_loss(logits, teacher)
        return terms

    def _weighted_terms(
        self, embedding: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None,
        groups: torch.Tensor, weighting: SampleWeighting,
    ) -> dict[str, torch.Tensor]:
        """Every enabled term, the per-sample ones reduced with ``weighting``'s batch weights."""
        per_sample: dict[str, torch.Tensor] = {}
        if self.loss_mix.ce > 0:
            per_sample["ce"] = F.cross_entropy(
                logits, y, label_smoothing=self.loss_mix.label_smoothing, reduction="none"
            )
        if self.arcface is not None:
            per_sample["arcface"] = self._arcface_losses(embedding, y)
        if teacher is not None:
            per_sample["kd"] = distillation_loss(logits, teacher, reduction="none")
        weights = self.weights()
        combined = sum(weights[name] * value.detach() for name, value in per_sample.items())
        sample_weights = weighting.batch_weights(combined, y, groups).to(logits.dtype)
        terms = {name: (sample_weights * value).sum() for name, value in per_sample.items()}
        if self.triplet is not None and self.miner is not None:
            terms["triplet"] = self.triplet(embedding, y, self.miner(embedding, y))
        return {name: terms[name] for name in LOSS_NAMES if name in terms}

    def _arcface_losses(self, embedding: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """ArcFace's ``(N,)`` per-sample losses (its reducer does nothing; callers reduce)."""
        assert self.arcface is not None
        return self.arcface(embedding, y)["loss"]["losses"]


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = KD_TEMPERATURE,
    *, reduction: Literal["batchmean", "none"] = "batchmean",
) -> torch.Tensor:
    """``KL(softmax(t / T) || softmax(s / T)) * T**2``, averaged over the batch (``batchmean``)
    or one value per sample (``none``, shape ``(N,)``).

    Zero exactly when the student's and teacher's tempered distributions agree.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ in shape"
        )
    student = F.log_softmax(student_logits / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    if reduction == "none":
        return F.kl_div(student, teacher, reduction="none", log_target=True).sum(dim=1) * temperature**2
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True) * temperature**2
