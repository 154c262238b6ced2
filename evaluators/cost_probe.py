"""A candidate's first rung may not cost more than a share of the search's budget: a probe of its
first training steps projects the rung's training seconds and stops it early when they are over.

Why: on 2 cores one 192-px candidate's first epoch on 3,500 photos cost 486 s, a third of a
25-minute budget, for one look that a 64-px candidate took 114 s for. Successive halving assumes
first looks are cheap; the probe makes an expensive one cost a few steps instead.

How: the probe wraps every training step (the ``step_context`` of :func:`evaluators.training.train`)
and records when each step starts. The time from one step's start to the next is a whole step
(data, forward, backward, update). After :data:`WARMUP_STEPS` steps (lazy initialisation, caches)
and :data:`PROBE_STEPS` more, the *fastest* of those intervals times the rung's steps is the
projection; over the limit, :class:`TrainingTooCostly` is raised inside the step, before any more
training. The fastest, not the median: a busy shared machine only ever slows steps down, and an
earlier probe of training speed (before the search, median-based) misjudged by 10-50x on a busy
2-core machine; stopping a candidate that would have fitted loses it for good, letting a
borderline one train costs part of one budget share. The projection is taken once: a candidate
that passes trains its rung in full.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

WARMUP_STEPS = 2
"""Steps not timed (the first steps initialise lazily and run slow)."""
PROBE_STEPS = 3
"""Timed step intervals behind a projection."""


class TrainingTooCostly(Exception):
    """Raised inside a training step when the rung's projected training seconds exceed the limit.

    Attributes:
        projected_s: Projected training seconds of the whole rung.
        limit_s: The limit it exceeded.
        step_s: Seconds of the fastest probed step.
    """

    def __init__(self, projected_s: float, limit_s: float, step_s: float) -> None:
        super().__init__(f"its first rung would train ~{projected_s:.0f} s, more than the {limit_s:.0f} s a first "
                         f"rung may cost in this search ({step_s * 1000:.0f} ms per step)")
        self.projected_s = projected_s
        self.limit_s = limit_s
        self.step_s = step_s


class TrainingCostProbe:
    """Projects a rung's training seconds from its first steps and stops it when over ``limit_s``.

    Invariant: raises at most once, at step ``WARMUP_STEPS + PROBE_STEPS + 1`` of the first
    training loop it wraps (or never); afterwards it only passes steps through.

    Args:
        limit_s: Most training seconds the rung may cost.
        total_steps: Optimizer steps of the whole rung (epochs x steps per epoch, with fine-tune
            steps after pruning scaled by the pruned model's expected cost).
        clock: Seconds (``time.perf_counter`` unless a test passes its own).
    """

    def __init__(self, limit_s: float, total_steps: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if limit_s <= 0 or total_steps <= 0:
            raise ValueError(f"limit_s and total_steps must be positive, got {limit_s} and {total_steps}")
        self.limit_s = float(limit_s)
        self.total_steps = float(total_steps)
        self.clock = clock
        self.starts: list[float] = []
        self.projected_s: float | None = None

    def wrap(self, inner: Callable[[], Any]) -> Callable[[], Any]:
        """A step context that probes, then enters ``inner()`` (cancellation, host lock)."""

        @contextlib.contextmanager
        def step() -> Iterator[None]:
            self._before_step()
            with inner():
                yield

        return step

    def _before_step(self) -> None:
        if self.projected_s is not None:
            return
        self.starts.append(self.clock())
        timed = self.starts[WARMUP_STEPS:]
        if len(timed) < PROBE_STEPS + 1:
            return
        step_s = min(b - a for a, b in zip(timed, timed[1:]))
        self.projected_s = step_s * self.total_steps
        if self.projected_s > self.limit_s:
            raise TrainingTooCostly(self.projected_s, self.limit_s, step_s)


def first_rung_steps(*, steps_per_epoch: int, epochs: int, finetune_epochs: int, prune_ratio: float) -> float:
    """Optimizer steps of a first rung, fine-tune steps weighted by the pruned model's cost.

    Channel pruning by ``prune_ratio`` keeps ``1 - prune_ratio`` of each pruned layer's channels,
    so a fine-tune step costs at most about that share of a step before pruning (MACs fall
    faster, roughly with its square; the linear share is the conservative middle).
    """
    finetune = finetune_epochs * (1.0 - prune_ratio) if prune_ratio > 0 else 0.0
    return float(steps_per_epoch) * (epochs + finetune)
