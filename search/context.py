"""Building what trials share: latency cache, KD teacher, warm-start weights, the trial context."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from evaluators.contracts import LatencySettings
from spaces.task import Task

TEACHER_BACKBONE = "mobilenetv3_large"
TEACHER_RESOLUTION = 128
"""Teacher input size, or the data's smallest image side when that is smaller (no upscaled training)."""
TEACHER_MIN_EPOCHS = 3
"""Fewest epochs worth training a teacher for. Measured on the embedded esfair data (MobileNetV3-large
@128 from scratch, validation accuracy): 0.38 after 1 epoch, 0.57 after 3, 0.75 after 5. A one-epoch
teacher is weaker than the students it teaches; distilling from it cost the default run about
12 points of test accuracy (0.47 against 0.60 without KD)."""
TEACHER_MAX_EPOCHS = 5
TEACHER_SHARE = 0.10
"""Most of the budget the teacher may cost; a teacher that does not fit
:data:`TEACHER_MIN_EPOCHS` epochs in it means no KD."""


def resolve_train_device(choice: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``."""
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def teacher_resolution(dataset: Any) -> int:
    """Teacher input size: :data:`TEACHER_RESOLUTION`, capped by the data's smallest image side."""
    side = dataset.min_side or TEACHER_RESOLUTION
    return min(TEACHER_RESOLUTION, max(32, (side // 8) * 8))


def teacher_macs(dataset: Any) -> int:
    """MACs per image of the teacher at its resolution."""
    from evaluators.complexity import count_macs
    from evaluators.models import build_model

    return count_macs(build_model(TEACHER_BACKBONE, 1.0, dataset.num_classes), teacher_resolution(dataset))


def teacher_epochs_for(budget_s: float, epoch_s: float) -> int:
    """Teacher epochs that fit :data:`TEACHER_SHARE` of ``budget_s``, at most :data:`TEACHER_MAX_EPOCHS`.

    0 (KD is off) when fewer than :data:`TEACHER_MIN_EPOCHS` fit.
    """
    if epoch_s <= 0:
        return TEACHER_MAX_EPOCHS
    epochs = int(min(TEACHER_MAX_EPOCHS, (TEACHER_SHARE * budget_s) // epoch_s))
    return epochs if epochs >= TEACHER_MIN_EPOCHS else 0


class StudyTeacher:
    """The study's KD teacher, trained on first use and cached under ``cache_dir`` (one per epoch count).

    Thread- and process-safe through the teacher module's file lock; the teacher trains on the
    training split only. Its training holds the host's compute lock per step like any trial, and
    shows a progress bar (it costs real budget). Once trained or loaded it is scored on the
    validation split (the split the search selects on), so a job can refuse a teacher weaker than
    the candidates already are.
    """

    def __init__(self, cache_dir: Path, dataset: Any, device: str, seed: int) -> None:
        self.cache_dir = cache_dir
        self.dataset = dataset
        self.device = device
        self.seed = seed
        self._models: dict[int, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, candidate: Any, epochs: int) -> tuple[Any, int, float]:
        """``(teacher, its resolution, its validation accuracy)`` for ``epochs`` training epochs."""
        from evaluators.compute_lock import HOST_LOCK
        from evaluators.data import iterate_batches
        from evaluators.teacher import teacher_accuracy

        resolution = teacher_resolution(self.dataset)
        with self._lock:
            if epochs not in self._models:
                model = self._load_or_train(resolution, epochs)
                batches = iterate_batches(self.dataset.splits["val"], resolution, 64, shuffle=False, augment=False,
                                          seed=0)
                self._models[epochs] = model, teacher_accuracy(model, batches, step_context=HOST_LOCK.training_step)
        model, accuracy = self._models[epochs]
        return model, resolution, accuracy

    def _load_or_train(self, resolution: int, epochs: int) -> Any:
        from tqdm.auto import tqdm

        from evaluators.compute_lock import HOST_LOCK
        from evaluators.data import iterate_batches
        from evaluators.models import build_model
        from evaluators.teacher import get_or_train_teacher

        split = self.dataset.splits["train"]
        steps = -(-len(split.labels) // 32)
        bar = tqdm(total=epochs * steps, desc="KD teacher", unit="step", leave=False, position=1,
                   disable=not sys.stderr.isatty(), dynamic_ncols=True)

        def step() -> Any:
            bar.update(1)
            return HOST_LOCK.training_step()

        try:
            return get_or_train_teacher(
                self.cache_dir, num_classes=len(self.dataset.class_names),
                train_batches=lambda epoch: iterate_batches(split, resolution, 32, shuffle=True, augment=True,
                                                            seed=self.seed * 7919 + epoch),
                epochs=epochs, resolution=resolution,
                backbone_builder=lambda n: build_model(TEACHER_BACKBONE, 1.0, n),
                device=self.device, seed=self.seed, data_fingerprint=self.dataset.fingerprint(),
                backbone=TEACHER_BACKBONE, width=1.0, steps_per_epoch=steps, step_context=step,
            )
        finally:
            bar.close()


def build_context(
    *, dataset: Any, task: Task, backend: Any, settings: LatencySettings, engine: Any, study_dir: Path,
    device: str, seed: int, eval_batch: int = 1, pretrained: str | None = None,
) -> Any:
    """The TrialContext of a search."""
    from evaluators.latency.cache import LatencyCache
    from evaluators.pipeline import TrialContext
    from evaluators.warm_start import WeightsSource

    teacher = StudyTeacher(study_dir / "teacher", dataset, device, seed)
    return TrialContext(
        dataset=dataset, task=task, latency_backend=backend, latency_settings=settings,
        latency_cache=LatencyCache(engine), device=device, seed=seed, teacher=teacher,
        minority_group=task.minority_group, eval_threads=max(1, (os.cpu_count() or 1) // 2),
        eval_batch=eval_batch, weights=WeightsSource.from_option(pretrained),
    )
