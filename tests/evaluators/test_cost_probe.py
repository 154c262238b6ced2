"""The first-rung cost probe: projects a rung's training seconds from its first steps."""

from __future__ import annotations

import contextlib

import pytest

from evaluators.cost_probe import PROBE_STEPS, WARMUP_STEPS, TrainingCostProbe, TrainingTooCostly, first_rung_steps


class StepClock:
    """A clock that advances by the given step durations, one per read."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = list(durations)

    def __call__(self) -> float:
        value = self.now
        if self.durations:
            self.now += self.durations.pop(0)
        return value


def run_steps(probe: TrainingCostProbe, count: int) -> int:
    """Enter ``count`` wrapped steps; returns how many ran before the probe stopped them."""
    step = probe.wrap(contextlib.nullcontext)
    done = 0
    for _ in range(count):
        with step():
            done += 1
    return done


def test_an_expensive_rung_is_stopped_after_its_probe_steps() -> None:
    # two slow warm-up steps, then 0.5 s per step: 100 steps project 50 s, over a 10 s limit
    probe = TrainingCostProbe(10.0, 100, clock=StepClock([1.0, 0.9] + [0.5] * 20))
    with pytest.raises(TrainingTooCostly) as stopped:
        run_steps(probe, 100)
    assert stopped.value.projected_s == pytest.approx(50.0) and stopped.value.limit_s == 10.0
    assert stopped.value.step_s == pytest.approx(0.5)
    assert len(probe.starts) == WARMUP_STEPS + PROBE_STEPS + 1
    assert "~50 s" in str(stopped.value) and "10 s" in str(stopped.value)


def test_a_cheap_rung_trains_in_full_and_the_projection_is_kept() -> None:
    probe = TrainingCostProbe(10.0, 100, clock=StepClock([5.0, 5.0] + [0.05] * 200))
    assert run_steps(probe, 100) == 100
    assert probe.projected_s == pytest.approx(5.0)
    assert len(probe.starts) == WARMUP_STEPS + PROBE_STEPS + 1


def test_the_slow_first_steps_do_not_count() -> None:
    probe = TrainingCostProbe(10.0, 100, clock=StepClock([60.0, 30.0] + [0.01] * 20))
    assert run_steps(probe, 20) == 20


def test_a_step_slowed_by_a_busy_machine_does_not_stop_a_cheap_rung() -> None:
    # one probed step 20x slower (another process held the cores): the fastest step decides
    probe = TrainingCostProbe(10.0, 100, clock=StepClock([1.0, 1.0, 0.05, 2.0, 0.05] + [0.05] * 20))
    assert run_steps(probe, 20) == 20 and probe.projected_s == pytest.approx(5.0)


def test_a_rung_shorter_than_the_probe_is_never_stopped() -> None:
    probe = TrainingCostProbe(0.001, 3, clock=StepClock([1.0] * 10))
    assert run_steps(probe, 3) == 3 and probe.projected_s is None


def test_fine_tune_steps_after_pruning_are_weighted_by_what_is_kept() -> None:
    assert first_rung_steps(steps_per_epoch=10, epochs=1, finetune_epochs=2, prune_ratio=0.5) == 20.0
    assert first_rung_steps(steps_per_epoch=10, epochs=1, finetune_epochs=2, prune_ratio=0.0) == 10.0
    with pytest.raises(ValueError):
        TrainingCostProbe(0.0, 10)
