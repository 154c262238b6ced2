"""Training loop of one candidate: AdamW, cosine schedule with warm-up, clipping, EMA, KD, AMP.

``train`` trains a model in place with a :class:`~spaces.candidate.LossMix` and returns the model
to ship (the EMA copy when asked). The short recovery run after pruning is ``train`` with
:func:`finetune_mix` of the candidate's loss mix (CE and KD only).

Recipe (fixed, so that candidates differ only in what the space searches):

- AdamW, weight decay 0.05 on weights of rank >= 2; none on biases, norm parameters and the
  ArcFace class centres.
- Learning rate: linear warm-up over the first 5 % of the steps (at least one), then cosine decay
  that reaches 0 just after the last step. The total is ``epochs * steps_per_epoch`` (the hint,
  or the length of the first epoch's batches); a wrong hint only shifts where the cosine ends,
  and steps beyond it run at learning rate 0.
- Gradients clipped to global norm 1.0 (model and loss parameters together).
- EMA: ``timm.utils.ModelEmaV3`` with decay warm-up (``1 - (1 + step) ** -0.75``, capped at 0.999),
  updated after every optimizer step, so that short searches still move the average.
- KD: teacher logits under ``no_grad`` on the batch resized to the teacher's resolution.
- On CUDA: float16 autocast for the forward passes and a ``GradScaler``; the losses are computed
  in float32. On CPU: plain float32, bit-for-bit deterministic for a given ``seed`` and batches.
- Group-aware training (``group_weighting``, a method of ``evaluators.fairness``): the batch's
  group indices go to the loss, whose per-sample terms are reduced with the method's weights
  instead of the mean. Without it (the ``none`` method) the loop is exactly the plain one.
- Memory format: the model (and teacher) train in ``channels_last`` with channels-last inputs
  (1.4-1.6x faster training steps on CPU, measured with ``bench/data_throughput.py``); both are
  returned in the contiguous format, so pruning, checkpoints and export see ordinary tensors.
  A model with a strided 1x1 convolution (MobileOne's scale branches) trains contiguous: on
  torch 2.14's CPU kernels such a convolution in channels-last corrupts the heap for some
  channel counts (see :func:`channels_last_safe`).
- When ``ce == 0`` the model's classifier got no gradient: at the end it is replaced by the
  linear equivalent of the ArcFace head (same argmax, see
  :meth:`~evaluators.losses.LossComputer.arcface_classifier_weight`), in the shipped model too.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import ContextManager
from dataclasses import dataclass, field
from itertools import chain

import torch
import torch.nn.functional as F
from timm.utils import ModelEmaV3
from torch import nn

from evaluators.losses import LossComputer, SampleWeighting
from spaces.candidate import LossMix

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(x, y, g)``: float32 NCHW images, int64 class indices, int64 group indices."""

BatchSource = Callable[[int], Iterable[Batch]]
"""``epoch -> batches`` of that epoch (the callee decides shuffling, seeded by the epoch)."""

FeaturesAndLogits = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(model, x) -> (embedding, logits)``, where ``logits = classifier(embedding)``."""

Progress = Callable[[int, dict[str, float]], None]
"""Called after each epoch with the epoch index and its mean loss parts."""

StepContext = Callable[[], ContextManager[None]]
"""``step_context()`` wraps one optimizer step (see :func:`train`)."""

WEIGHT_DECAY = 0.05
WARMUP_FRACTION = 0.05
GRAD_CLIP_NORM = 1.0
EMA_DECAY = 0.999


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        model: The model to ship, in eval mode on the training device: the EMA copy when
            ``ema`` was asked, else the trained model itself.
        history: One dictionary per epoch: mean over its steps of each loss part (unweighted
            terms and ``total``), as returned by :class:`~evaluators.losses.LossComputer`.
        steps: Optimizer steps taken.
        seconds: Wall-clock seconds of the loop.
        ema: Whether ``model`` is the EMA copy.
        loss_mix: The loss mix actually trained with.
        classifier_from_arcface: Whether the classifier was replaced by the ArcFace head.
        loss_state: CPU copy of the loss module's state (ArcFace class centres), so a later run
            can continue from it.
    """

    model: nn.Module
    history: list[dict[str, float]]
    steps: int
    seconds: float
    ema: bool
    loss_mix: LossMix
    classifier_from_arcface: bool = False
    loss_state: dict[str, torch.Tensor] = field(default_factory=dict)


def resize_to(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Bilinear resize of an NCHW batch to ``resolution`` squared (unchanged when it already is, or None)."""
    if resolution is None or tuple(x.shape[-2:]) == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)


def warmup_cosine(total_steps: int, warmup_fraction: float = WARMUP_FRACTION) -> Callable[[int], float]:
    """Learning-rate multiplier of optimizer step ``s`` (0-based): linear warm-up, then cosine to 0.

    Invariants: the multiplier is in ``(0, 1]`` during warm-up and reaches 1 at its last step;
    afterwards it decreases strictly, stays positive up to the last step ``total_steps - 1`` (no
    wasted step) and is 0 from step ``total_steps`` on.
    """
    total_steps = max(1, total_steps)
    warmup = max(1, round(warmup_fraction * total_steps))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup + 1) / (total_steps - warmup + 1))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return multiplier


def finetune_mix(loss_mix: LossMix) -> LossMix:
    """The loss mix of the fine-tuning run after pruning: CE (+ label smoothing) and KD only.

    ArcFace's class-centre matrix has the width of the embedding before pruning, so it cannot
    follow the model through a change of embedding width, and fresh centres would pull the pruned
    embedding towards random directions; the triplet term is dropped with it, so the few
    fine-tuning steps go to the classifier output that ships. CE keeps its weight, or 1 when the
    mix had none (the classifier was then taken from the ArcFace head and CE now trains it).
    """
    return LossMix(ce=loss_mix.ce or 1.0, kd=loss_mix.kd, label_smoothing=loss_mix.label_smoothing)


def train(
    model: nn.Module,
    batches: BatchSource,
    *,
    loss_mix: LossMix,
    epochs: int,
    lr: float,
    device: str | torch.device = "cpu",
    teacher: nn.Module | None = None,
    teacher_resolution: int | None = None,
    ema: bool = False,
    steps_per_epoch: int | None = None,
    progress: Progress | None = None,
    features_and_logits: FeaturesAndLogits | None = None,
    seed: int | None = None,
    step_context: StepContext | None = None,
    initial_loss_state: dict[str, torch.Tensor] | None = None,
    group_weighting: SampleWeighting | None = None,
    channels_last: bool = True,
) -> TrainResult:
    """Train ``model`` in place with ``loss_mix`` and return the model to ship.

    Args:
        model: A classifier whose ``features_and_logits`` gives ``(embedding, logits)``;
            moved to ``device`` and trained in place.
        batches: ``epoch -> iterable of (x, y, g)``; ``g`` is used only by ``group_weighting``.
        loss_mix: Loss weights. ``kd > 0`` needs ``teacher``.
        epochs: Passes over ``batches`` (>= 1).
        lr: Peak learning rate.
        device: ``cpu`` or ``cuda[:i]``; CUDA enables AMP.
        teacher: KD teacher returning logits; put in eval mode, never trained here.
        teacher_resolution: Side the teacher sees (the batch is resized to it); None keeps the
            batch's own size.
        ema: Ship an exponential moving average of the weights instead of the last weights.
        steps_per_epoch: Steps of one epoch, for the schedule; needed when the first epoch's
            batches have no ``len``.
        progress: Called after each epoch with ``(epoch, mean parts)``.
        features_and_logits: ``(model, x) -> (embedding, logits)``; defaults to
            ``evaluators.models.features_and_logits``.
        seed: When given, ``torch.manual_seed(seed)`` before anything random (ArcFace centres,
            dropout), so runs on CPU repeat exactly.
        step_context: ``step_context()`` is entered around every optimizer step (the host's
            compute lock, a progress tick, a cancellation check that raises to stop training).
        initial_loss_state: State of the loss module to continue from (ArcFace class centres of
            an earlier rung), loaded when its shapes fit.
        group_weighting: Group-aware reduction of the per-sample loss terms
            (:class:`~evaluators.losses.SampleWeighting`); ``None`` takes the plain mean. A
            stateful one (Group DRO) continues from its current state, so one object shared by a
            training run and its fine-tune carries its group weights over.
        channels_last: Train in the channels-last memory format (faster on CPU and on CUDA with
            AMP) when :func:`channels_last_safe` allows it; the model is handed back contiguous
            either way.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: Bad arguments, ``kd > 0`` without a teacher, an empty epoch, or an unknown
            number of steps.
        FloatingPointError: When the loss stops being finite (lower ``lr``).
    """
    if epochs < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1 and lr > 0, got epochs={epochs}, lr={lr}")
    if loss_mix.kd > 0 and teacher is None:
        raise ValueError(f"loss mix {loss_mix.describe()!r} has kd={loss_mix.kd:g} but no teacher was given")
    if features_and_logits is None:
        from evaluators.models import features_and_logits as default_features_and_logits

        features_and_logits = default_features_and_logits
    if seed is not None:
        torch.manual_seed(seed)
    device = torch.device(device)
    use_amp = device.type == "cuda"
    channels_last = channels_last and channels_last_safe(model) and (teacher is None or channels_last_safe(teacher))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    if teacher is not None and loss_mix.kd > 0:
        teacher.to(device, memory_format=memory_format).eval()
    else:
        teacher = None

    started = time.perf_counter()
    first_epoch = batches(0)
    total_steps = epochs * _steps_per_epoch(first_epoch, steps_per_epoch)
    epoch_iter = iter(first_epoch)
    first = next(epoch_iter, None)
    if first is None:
        raise ValueError("batches(0) yielded no batches")
    num_classes, embedding_dim = _probe_shapes(
        model, first[0].to(device, memory_format=memory_format), features_and_logits)
    loss_computer = LossComputer(loss_mix, num_classes, embedding_dim).to(device)
    if initial_loss_state:
        _load_fitting(loss_computer, initial_loss_state)
    optimizer = torch.optim.AdamW(_param_groups(model, loss_computer), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    averager = (
        ModelEmaV3(model, decay=EMA_DECAY, use_warmup=True, warmup_power=0.75) if ema else None
    )
    clip_params = [p for group in optimizer.param_groups for p in group["params"]]

    history: list[dict[str, float]] = []
    step = 0
    guard = step_context or contextlib.nullcontext
    for epoch in range(epochs):
        source: Iterator[Batch] = chain([first], epoch_iter) if epoch == 0 else iter(batches(epoch))
        model.train()
        sums: dict[str, float] = {}
        count = 0
        for x, y, groups in source:
            with guard():
                x = x.to(device, memory_format=memory_format, non_blocking=True)
                y = y.to(device, non_blocking=True)
                teacher_logits = _teacher_logits(teacher, x, teacher_resolution, use_amp)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                    embedding, logits = features_and_logits(model, x)
                if group_weighting is None:
                    total, parts = loss_computer(embedding, logits, y, teacher_logits)
                else:
                    total, parts = loss_computer(embedding, logits, y, teacher_logits,
                                                 groups=groups.to(device), weighting=group_weighting)
                if not math.isfinite(parts["total"]):
                    raise FloatingPointError(
                        f"training loss became {parts['total']} at epoch {epoch}, step {step} "
                        f"({loss_mix.describe()}, lr={lr:g}): lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(clip_params, GRAD_CLIP_NORM)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                if averager is not None:
                    averager.update(model, step=step)
                for name, value in parts.items():
                    sums[name] = sums.get(name, 0.0) + value
                count += 1
        if count == 0:
            raise ValueError(f"batches({epoch}) yielded no batches")
        means = {name: value / count for name, value in sums.items()}
        history.append(means)
        if progress is not None:
            progress(epoch, means)

    from_arcface = loss_mix.ce == 0
    shipped = averager.module if averager is not None else model
    if from_arcface:
        weight = loss_computer.arcface_classifier_weight()
        _install_classifier(model, weight)
        if shipped is not model:
            _install_classifier(shipped, weight)
    for trained in (model, shipped, teacher):
        if trained is not None:
            trained.to(memory_format=torch.contiguous_format)
    model.eval()
    shipped.eval()
    return TrainResult(
        model=shipped, history=history, steps=step, seconds=time.perf_counter() - started,
        ema=averager is not None, loss_mix=loss_mix, classifier_from_arcface=from_arcface,
        loss_state={k: v.detach().cpu().clone() for k, v in loss_computer.state_dict().items()},
    )


def channels_last_safe(model: nn.Module) -> bool:
    """Whether ``model`` may train in ``channels_last``: it has no 1x1 convolution with a stride > 1.

    Such a convolution in channels-last (e.g. 3 -> 16 channels, stride 2) makes torch 2.14's CPU
    backward write outside its buffers (``munmap_chunk(): invalid pointer``, a crashed search);
    every other layer of the built-in backbones, pruned or not, was checked to train safely.
    """
    return not any(
        isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (1, 1) and max(m.stride) > 1 for m in model.modules()
    )


def _steps_per_epoch(first_epoch: Iterable[Batch], hint: int | None) -> int:
    if hint is not None:
        if hint < 1:
            raise ValueError(f"steps_per_epoch={hint} must be >= 1")
        return hint
    try:
        return max(1, len(first_epoch))  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(
            "the batches have no len(): pass steps_per_epoch for the learning-rate schedule"
        ) from None


@torch.no_grad()
def _probe_shapes(
    model: nn.Module, x: torch.Tensor, features_and_logits: FeaturesAndLogits
) -> tuple[int, int]:
    """``(num_classes, embedding_dim)`` from one eval-mode forward pass (no state changes)."""
    was_training = model.training
    model.eval()
    embedding, logits = features_and_logits(model, x[:2])
    model.train(was_training)
    if embedding.dim() != 2 or logits.dim() != 2:
        raise ValueError(
            f"features_and_logits must return 2-D (embedding, logits), got shapes "
            f"{tuple(embedding.shape)} and {tuple(logits.shape)}"
        )
    return logits.shape[1], embedding.shape[1]


def _param_groups(model: nn.Module, loss_computer: LossComputer) -> list[dict]:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    no_decay.extend(p for p in loss_computer.parameters() if p.requires_grad)
    return [
        {"params": decay, "weight_decay": WEIGHT_DECAY},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@torch.no_grad()
def _teacher_logits(
    teacher: nn.Module | None, x: torch.Tensor, resolution: int | None, use_amp: bool
) -> torch.Tensor | None:
    if teacher is None:
        return None
    with torch.autocast(device_type=x.device.type, dtype=torch.float16, enabled=use_amp):
        return teacher(resize_to(x, resolution)).float()


@torch.no_grad()
def _load_fitting(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy the tensors of ``state`` whose name and shape match ``module``'s."""
    own = module.state_dict()
    module.load_state_dict({k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False)


@torch.no_grad()
def _install_classifier(model: nn.Module, weight: torch.Tensor) -> None:
    """Set the model's linear classifier to ``weight`` with zero bias."""
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if not isinstance(classifier, nn.Linear) or classifier.weight.shape != weight.shape:
        raise ValueError(
            f"cannot install the ArcFace head: the model's classifier is {classifier!r}, "
            f"not a Linear layer of shape {tuple(weight.shape)}"
        )
    classifier.weight.copy_(weight)
    if classifier.bias is not None:
        classifier.bias.zero_()
