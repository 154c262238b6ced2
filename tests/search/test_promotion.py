"""Promotion at a rung: floors rank by constrained domination, they do not stop a candidate."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from evaluators.pipeline import RungJob
from search.front import FrontSpec
from search.promotion import RungEntry, decide, rung_entry, rung_order
from search.records import rung_record
from spaces.registry import get_space
from tests.search.cheap import cheap_outcome

SPEC = FrontSpec.from_task(get_space("esfair").task.with_settings(latency_budget_ms=10.0))


def rung_entries(chance_violation: float) -> list[RungEntry]:
    """Three candidates after one epoch; trial 0 predicts one class (chance accuracy, a group gap of
    0, so the best fairness) and is the fastest: non-dominated by its fairness and latency alone."""
    return [
        RungEntry(0, (0.25, 1 / 3, 0.5), True, chance_violation),
        RungEntry(1, (0.55, 0.20, 1.0), True),
        RungEntry(2, (0.50, 0.22, 3.0), True),
    ]


def test_a_chance_level_candidate_takes_no_slot_from_one_that_meets_the_accuracy_floor() -> None:
    ignoring_the_floor = decide(0, rung_entries(0.0), SPEC, 0, 3)
    assert ignoring_the_floor.promote, "the setting must be one where fairness alone would promote it"
    entries = rung_entries(0.10)
    chance = decide(0, entries, SPEC, 0, 3)
    assert not chance.promote and chance.position == 2 and "past a floor" in chance.reason
    assert [decide(n, entries, SPEC, 0, 3).promote for n in (1, 2)].count(True) == 1


def test_when_every_candidate_is_past_a_floor_the_least_past_continues() -> None:
    entries = [RungEntry(0, (0.26, 1 / 3, 0.5), True, 0.09), RungEntry(1, (0.30, 0.1, 3.0), True, 0.05),
               RungEntry(2, (0.28, 0.3, 1.0), True, 0.07)]
    assert [e.number for e in rung_order(entries, SPEC)] == [1, 2, 0]
    assert decide(1, entries, SPEC, 0, 3).promote and not decide(0, entries, SPEC, 0, 3).promote


def test_an_infeasible_candidate_never_continues_even_alone() -> None:
    entries = [RungEntry(0, (0.9, 0.3, 20.0), False), RungEntry(1, (0.3, 0.1, 1.0), True, 0.05)]
    assert not decide(0, entries, SPEC, 0, 3, final=True).promote
    assert decide(1, entries, SPEC, 0, 3, final=True).promote, "past a floor is not infeasible below the top"


def test_a_rung_record_stored_before_floors_were_recorded_meets_them() -> None:
    assert rung_entry(4, {"values": [0.5, 0.2, 1.0], "feasible": True}).floor_violation == 0.0
    assert rung_entry(4, {"values": [0.5, 0.2, 1.0], "feasible": True, "floor_violation": 0.02}).floor_violation == 0.02


@pytest.mark.parametrize("floor", [0.0, 0.99])
def test_a_rung_record_is_feasible_past_a_floor_and_says_how_far_past(tmp_path: Path, floor: float) -> None:
    space = get_space("esfair")
    job = SimpleNamespace(candidate=space.start_point()[1], rung=RungJob(rung=0, epochs=1, final=False, screen=True),
                          trial_dir=tmp_path)
    outcome = cheap_outcome(job)  # type: ignore[arg-type]
    task = space.task.with_settings(latency_budget_ms=1000.0, floors={"accuracy": floor})
    record = rung_record(outcome, task)
    assert record["feasible"], "below the top rung a floor only orders candidates"
    assert record["floor_violation"] == pytest.approx(max(0.0, floor - outcome.metrics.accuracy))
    assert (record["floor_violation"] > 0) == (floor > 0)
