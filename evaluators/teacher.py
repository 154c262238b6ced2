"""The knowledge-distillation teacher: trained once per study, cached on disk, shared by trials.

Cache layout, in ``cache_dir`` (one study's folder)::

    teacher-<key>.pt     state dict (CPU tensors), read with torch.load(weights_only=True)
    teacher-<key>.json   {"format", "description", "weights_sha256", "history", "seconds"}
    teacher-<key>.lock   fcntl lock file

``<key>`` hashes the description: backbone and width labels, the architecture's signature (class,
parameter count, state-dict shapes), resolution, number of classes, the caller's data
fingerprint, and the training recipe (epochs, lr, seed, loss mix). A teacher is reused only
when its JSON holds the same description and the weights file has the recorded sha256; a cache
that cannot be read (truncated, corrupt, wrong shapes) is retrained with a ``RuntimeWarning``,
never an exception.

Concurrency: the whole check-train-write sequence holds an exclusive ``fcntl.flock`` on the lock
file, so threads or processes of one study wait for the first one's teacher instead of training
their own (``flock`` locks belong to open file descriptions, so threads of one process exclude
each other too). Files are written to a temporary name in the same folder and renamed into place,
weights first, JSON last: a reader never sees a half-written file, and weights without a JSON are
simply retrained.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators.files import atomic_write, exclusive_lock
from evaluators.hashing import sha256_file
from evaluators.training import Batch, BatchSource, FeaturesAndLogits, StepContext, resize_to, train
from spaces.candidate import LossMix

CACHE_FORMAT = 1
"""Version of the cache layout; part of the description, so a new layout retrains."""

TEACHER_LOSS_MIX = LossMix(ce=1.0, label_smoothing=0.1)
"""The teacher's recipe: cross-entropy with label smoothing 0.1 (softer targets distil better)."""

BackboneBuilder = Callable[[int], nn.Module]
"""``num_classes -> freshly initialised model``, e.g. ``lambda n: build_model("mobilenetv3_large", 1.0, n)``."""


def architecture_signature(model: nn.Module) -> dict[str, Any]:
    """Class name, parameter count and a hash of every state-dict entry's name and shape.

    Two models with the same signature can load each other's state dict.
    """
    shapes = [(name, list(tensor.shape)) for name, tensor in model.state_dict().items()]
    return {
        "class": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
        "state_shapes_sha256": hashlib.sha256(json.dumps(shapes).encode()).hexdigest(),
    }


def teacher_description(
    *,
    architecture: dict[str, Any],
    backbone: str | None,
    width: float | None,
    num_classes: int,
    resolution: int,
    data_fingerprint: str,
    epochs: int,
    lr: float,
    seed: int,
) -> dict[str, Any]:
    """JSON-safe description of a teacher; equal descriptions mean interchangeable teachers."""
    return {
        "format": CACHE_FORMAT,
        "backbone": backbone if backbone is not None else architecture["class"],
        "width": None if width is None else float(width),
        "architecture": architecture,
        "num_classes": int(num_classes),
        "resolution": int(resolution),
        "data_fingerprint": data_fingerprint,
        "epochs": int(epochs),
        "lr": float(lr),
        "seed": int(seed),
        "loss_mix": asdict(TEACHER_LOSS_MIX),
    }


def teacher_paths(cache_dir: Path, description: dict[str, Any]) -> tuple[Path, Path, Path]:
    """``(weights, json, lock)`` paths of the teacher that ``description`` describes."""
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    stem = Path(cache_dir) / f"teacher-{key}"
    return stem.with_suffix(".pt"), stem.with_suffix(".json"), stem.with_suffix(".lock")


def get_or_train_teacher(
    cache_dir: Path,
    *,
    num_classes: int,
    train_batches: BatchSource,
    epochs: int,
    resolution: int,
    backbone_builder: BackboneBuilder,
    data_fingerprint: str,
    device: str | torch.device = "cpu",
    seed: int = 0,
    lr: float = 3e-3,
    backbone: str | None = None,
    width: float | None = None,
    features_and_logits: FeaturesAndLogits | None = None,
    steps_per_epoch: int | None = None,
    step_context: StepContext | None = None,
) -> nn.Module:
    """The cached teacher for this description, training and caching it first when needed.

    The description (the cache key) holds the architecture's signature
    (:func:`architecture_signature` of a freshly built model), so changing the builder's backbone
    or width trains a new teacher even when ``backbone`` / ``width`` are not given.

    Args:
        cache_dir: The study's teacher folder (created when missing).
        num_classes: Classes of the task.
        train_batches: ``epoch -> (x, y, g)`` batches of the training split.
        epochs: Training epochs.
        resolution: Side of the square images the teacher is trained on and sees at
            distillation time (batches are resized to it).
        backbone_builder: ``num_classes -> model`` (called under ``seed``).
        data_fingerprint: Identifies the training data (e.g. a hash of the manifest); a
            different fingerprint trains a different teacher.
        device: Where to train and where the returned teacher lives.
        seed: Seeds the initialisation and training (the caller's CPU RNG state is left as it was).
        lr: Peak learning rate.
        backbone: Backbone name written into the description (default: the model's class name).
        width: Width multiplier written into the description.
        features_and_logits: Passed to :func:`evaluators.training.train`.
        steps_per_epoch: Passed to :func:`evaluators.training.train`; needed when
            ``train_batches(epoch)`` has no ``len``.
        step_context: Passed to :func:`evaluators.training.train` (the host's compute lock, a
            progress tick).

    Returns:
        The teacher in eval mode on ``device``, with ``requires_grad`` off.
    """
    model = _fresh(backbone_builder, num_classes, seed)
    description = teacher_description(
        architecture=architecture_signature(model), backbone=backbone, width=width,
        num_classes=num_classes, resolution=resolution, data_fingerprint=data_fingerprint,
        epochs=epochs, lr=lr, seed=seed,
    )
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    weights_path, json_path, lock_path = teacher_paths(cache_dir, description)
    with exclusive_lock(lock_path):
        if not _load_cached(model, weights_path, json_path, description):
            with torch.random.fork_rng(devices=[]):
                model = _fresh(backbone_builder, num_classes, seed)
                result = train(
                    model, _resized(train_batches, resolution), loss_mix=TEACHER_LOSS_MIX,
                    epochs=epochs, lr=lr, device=device, steps_per_epoch=steps_per_epoch,
                    features_and_logits=features_and_logits, seed=seed, step_context=step_context,
                )
            model = result.model
            _save(model, description, weights_path, json_path, result.history, result.seconds)
    model.to(device).eval()
    model.requires_grad_(False)
    return model


def teacher_accuracy(model: nn.Module, batches: Iterable[Batch], step_context: StepContext | None = None) -> float:
    """Top-1 accuracy of ``model`` (eval mode, no gradients) over ``batches``; 0.0 for no batches.

    The batches must already be at the teacher's resolution (nothing is resized here).

    Args:
        step_context: Entered around each batch (the host's compute lock), like a training step.
    """
    device = next(model.parameters()).device
    correct = total = 0
    model.eval()
    with torch.no_grad():
        for x, y, _ in batches:
            with step_context() if step_context is not None else nullcontext():
                predicted = model(x.to(device)).argmax(dim=1).cpu()
            correct += int((predicted == y).sum())
            total += len(y)
    return correct / total if total else 0.0


def _fresh(builder: BackboneBuilder, num_classes: int, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(num_classes)


def _load_cached(model: nn.Module, weights_path: Path, json_path: Path, description: dict[str, Any]) -> bool:
    """Load the cached weights into ``model``; False when there are none or they cannot be used.

    An unusable cache (with a warning) leaves ``model`` possibly half-loaded: the caller rebuilds it.
    """
    if not json_path.exists():
        return False
    try:
        record = json.loads(json_path.read_text())
        if record.get("description") != description:
            raise ValueError("its description differs from the requested teacher")
        digest = sha256_file(weights_path)
        if digest != record.get("weights_sha256"):
            raise ValueError(f"weights sha256 {digest[:12]} does not match the recorded one")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable cache means retrain, whatever broke
        warnings.warn(
            f"teacher cache {weights_path} is unusable ({type(exc).__name__}: {exc}); retraining it",
            RuntimeWarning, stacklevel=3,
        )
        return False
    return True


def _save(
    model: nn.Module,
    description: dict[str, Any],
    weights_path: Path,
    json_path: Path,
    history: list[dict[str, float]],
    seconds: float,
) -> None:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    atomic_write(weights_path, lambda handle: torch.save(state, handle))
    record = {
        "format": CACHE_FORMAT,
        "description": description,
        "weights_sha256": sha256_file(weights_path),
        "history": history,
        "seconds": seconds,
    }
    atomic_write(json_path, lambda handle: handle.write(json.dumps(record, indent=2, sort_keys=True).encode()))


class _ResizedEpoch:
    """One epoch's batches with images resized; keeps ``len`` when the source has one."""

    def __init__(self, source: Iterable[Batch], resolution: int) -> None:
        self._source = source
        self._resolution = resolution

    def __iter__(self) -> Iterator[Batch]:
        for x, y, g in self._source:
            yield resize_to(x, self._resolution), y, g

    def __len__(self) -> int:
        return len(self._source)  # type: ignore[arg-type]


def _resized(batches: BatchSource, resolution: int) -> BatchSource:
    return lambda epoch: _ResizedEpoch(batches(epoch), resolution)
