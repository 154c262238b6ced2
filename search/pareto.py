"""Pareto fronts over stored trials (pure functions; no Optuna internals)."""

from __future__ import annotations

from typing import Any, Sequence

from search import attrs


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    better = False
    for x, y, d in zip(a, b, directions):
        if d == "maximize":
            x, y = -x, -y
        if x > y:
            return False
        if x < y:
            better = True
    return better


def feasible_trained(trials: Sequence[Any]) -> list[Any]:
    """COMPLETE trials that were trained and meet every constraint."""
    return [
        t for t in trials
        if t.state.name == "COMPLETE" and t.user_attrs.get(attrs.TRAINED) and t.user_attrs.get(attrs.FEASIBLE)
    ]


def pareto_trials(trials: Sequence[Any], directions: Sequence[str]) -> list[Any]:
    """The non-dominated feasible trained trials, in trial-number order."""
    pool = feasible_trained(trials)
    front = [t for t in pool if not any(dominates(o.values, t.values, directions) for o in pool if o is not t)]
    return sorted(front, key=lambda t: t.number)
