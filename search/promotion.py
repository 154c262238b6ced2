"""Asynchronous successive halving for several objectives (after MO-ASHA, Schmucker et al. 2021).

When a candidate finishes rung ``r`` the search decides at once whether it continues: among every
candidate that has finished rung ``r`` so far (this one included, any launcher of the study), the
candidates are ordered by non-dominated rank of their rung-``r`` objective values, ties broken by
exclusive hypervolume contribution (how much of the rung's front a candidate alone holds up);
the first ``floor(n / η)`` continue. Infeasible candidates never continue. This is the "stopping"
form of asynchronous successive halving (Optuna's and Ray Tune's rule for one objective); a
candidate stopped is final (Optuna marks it PRUNED). One change for small counts: while fewer
than η candidates have finished a rung, a decision would have to promote blindly (Optuna promotes
the first one whatever it is) or stop blindly (the first η − 1 could never continue); instead the
candidate *waits* (:func:`decide` says so, the driver parks the trial without a slot) and is
decided with the others once η have finished the rung. When no more candidates will come (the
budget or the cap is spent: a *final* decision), at least the best feasible one continues, so a
search whose last candidates could not make η still brings its best one to the top rung if the
budget allows (the scheduler checks that the next rung fits).

Latency is exact from rung 0 (it is measured before training), so it takes part in every rung's
ranking; accuracy and fairness are that rung's estimates.

Floors (the accuracy floor above chance, ``--floor``) make a candidate infeasible only at the top
rung, where its figures are final; below it a candidate past a floor may still climb over it.
There they rank by constrained domination (Deb et al., NSGA-II): every candidate that meets the
floors comes before every one that does not, and those past a floor come after in order of how
far past it they are. A chance-level model predicts one class, so its group gap is 0 and its
fairness perfect; without this rule it would be non-dominated by fairness alone and take a slot
from a model that has learned something.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.front import FrontSpec, preference_order


@dataclass(frozen=True)
class RungEntry:
    """One candidate's figures at a rung.

    Attributes:
        number: Trial number.
        values: Objective values at the rung, in task order.
        feasible: Whether it met the constraints checked at the rung (budgets).
        floor_violation: How far past the task's floors its figures are (0: it meets them; the
            sum of the positive floor constraint values, e.g. accuracy points below the floor).
    """

    number: int
    values: tuple[float, ...]
    feasible: bool
    floor_violation: float = 0.0


def rung_entry(number: int, record: Mapping[str, Any]) -> RungEntry:
    """The entry of trial ``number``'s stored ``rung.<r>`` record (one stored before floors were
    recorded at rungs counts as meeting them)."""
    return RungEntry(number, tuple(float(v) for v in record["values"]), bool(record.get("feasible")),
                     float(record.get("floor_violation") or 0.0))


@dataclass(frozen=True)
class Decision:
    """Whether a candidate continues past a rung, and why (stored on the trial).

    Attributes:
        promote: It continues to the next rung.
        position: Its place in the rung's order (0 = best), ``None`` when infeasible.
        competitors: Candidates that had finished the rung, itself included.
        quota: How many of them continue.
        reason: One line for people.
    """

    promote: bool
    position: int | None
    competitors: int
    quota: int
    reason: str
    wait: bool = False


def decide(number: int, entries: Sequence[RungEntry], spec: FrontSpec, rung: int, eta: int, *,
           final: bool = False) -> Decision:
    """Decide whether trial ``number`` (one of ``entries``) continues past ``rung``.

    Args:
        final: No more competitors will come: decide even with fewer than ``eta``, and let at
            least the best feasible one continue (quota ``max(1, n // eta)``).

    Raises:
        ValueError: ``number`` is not among ``entries``.
    """
    me = next((e for e in entries if e.number == number), None)
    if me is None:
        raise ValueError(f"trial {number} has no entry at rung {rung}")
    feasible = [e for e in entries if e.feasible]
    quota = max(1, len(entries) // eta) if final else len(entries) // eta
    if not me.feasible:
        return Decision(False, None, len(entries), quota, f"infeasible at rung {rung}: never promoted")
    if len(entries) < eta and not final:
        return Decision(False, None, len(entries), quota,
                        f"rung {rung}: waits until {eta} candidates have finished it ({len(entries)} so far)", wait=True)
    ranked = rung_order(feasible, spec)
    position = [e.number for e in ranked].index(number)
    if position < quota:
        reason = f"rung {rung}: {position + 1} of {len(entries)} by non-dominated rank, top {quota} continue"
        return Decision(True, position, len(entries), quota, reason)
    reason = f"rung {rung}: {position + 1} of {len(entries)} by non-dominated rank, only the top {quota} continue"
    if me.floor_violation > 0:
        reason = (f"rung {rung}: {position + 1} of {len(entries)}, past a floor by {me.floor_violation:.3g} (ranked after "
                  f"every candidate that meets the floors), only the top {quota} continue")
    return Decision(False, position, len(entries), quota, reason)


def rung_order(entries: Sequence[RungEntry], spec: FrontSpec) -> list[RungEntry]:
    """``entries`` best first: those that meet the floors by non-dominated rank with the
    hypervolume tie-break (:func:`search.front.preference_order`), then those past a floor, least
    past first (ties: by the same preference among them)."""
    meeting = [e for e in entries if e.floor_violation <= 0]
    past = [e for e in entries if e.floor_violation > 0]
    out = [meeting[i] for i in preference_order([e.values for e in meeting], spec)] if meeting else []
    if past:
        preference = {past[i].number: k for k, i in enumerate(preference_order([e.values for e in past], spec))}
        out.extend(sorted(past, key=lambda e: (e.floor_violation, preference[e.number])))
    return out


def expected_promotions(finished: float, eta: int) -> float:
    """Expected candidates promoted out of ``finished`` arriving in random order under :func:`decide`.

    The first η are decided together (one continues); the ``i``-th after them continues when it
    ranks in the top ``floor(i / η)`` of ``i``, probability ``floor(i / η) / i``.
    """
    n = int(finished)
    if n < eta:
        return 0.0
    return 1.0 + sum((i // eta) / i for i in range(eta + 1, n + 1))
