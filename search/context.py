"""Building what trials share: data set, latency backend and cache, teacher, task."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from evaluators.contracts import LatencySettings
from spaces.registry import SpaceSpec
from spaces.task import Task

TEACHER_BACKBONE = "mobilenetv3_large"
TEACHER_RESOLUTION = 128
"""Teacher input size, or the data's image size when that is smaller (no upscaled training)."""
TEACHER_EPOCHS = 3


def effective_task(space: SpaceSpec, latency_budget_ms: float | None, minority_group: str | None) -> Task:
    """The space's task with the user's budget and minority group applied."""
    task = space.task
    return dataclasses.replace(
        task,
        latency_budget_ms=latency_budget_ms if latency_budget_ms is not None else task.latency_budget_ms,
        minority_group=minority_group or task.minority_group,
    )


def resolve_train_device(choice: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``."""
    if choice != "auto":
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class StudyTeacher:
    """The study's KD teacher, trained once on first use and cached under ``cache_dir``.

    Thread- and process-safe through the teacher module's file lock; the teacher sees the training
    split only.
    """

    def __init__(self, cache_dir: Path, dataset: Any, device: str, seed: int) -> None:
        self.cache_dir = cache_dir
        self.dataset = dataset
        self.device = device
        self.seed = seed
        self._model: Any = None

    def resolution(self) -> int:
        """Teacher input size: :data:`TEACHER_RESOLUTION`, capped by the training images' size."""
        first = self.dataset.splits["train"].images[0]
        return min(TEACHER_RESOLUTION, max(32, (min(first.size) // 8) * 8))

    def __call__(self, candidate: Any) -> tuple[Any, int]:
        resolution = self.resolution()
        if self._model is None:
            from evaluators.data import iterate_batches
            from evaluators.models import build_model
            from evaluators.teacher import get_or_train_teacher

            split = self.dataset.splits["train"]
            self._model = get_or_train_teacher(
                self.cache_dir, num_classes=len(self.dataset.class_names),
                train_batches=lambda epoch: iterate_batches(split, resolution, 32, shuffle=True,
                                                            augment=True, seed=self.seed * 7919 + epoch),
                epochs=TEACHER_EPOCHS, resolution=resolution,
                backbone_builder=lambda n: build_model(TEACHER_BACKBONE, 1.0, n),
                device=self.device, seed=self.seed, data_fingerprint=self.dataset.fingerprint(),
                backbone=TEACHER_BACKBONE, width=1.0, steps_per_epoch=-(-len(split.labels) // 32),
            )
        return self._model, resolution


def build_context(
    *, dataset: Any, task: Task, backend: Any, settings: LatencySettings, engine: Any,
    study_dir: Path, device: str, seed: int,
) -> Any:
    """The TrialContext of a search."""
    from evaluators.latency.cache import LatencyCache
    from evaluators.pipeline import TrialContext

    return TrialContext(
        dataset=dataset, task=task, latency_backend=backend, latency_settings=settings,
        latency_cache=LatencyCache(engine), device=device, seed=seed,
        teacher=StudyTeacher(study_dir / "teacher", dataset, device, seed),
        minority_group=task.minority_group, eval_threads=max(1, (os.cpu_count() or 1) // 2),
    )
