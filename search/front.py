"""The one place fronts are computed: feasibility, dominance, dominance within noise, ranks and
hypervolume, for the launcher's report, ``search.export``, the dashboard and the benches.

Pure numpy plus moocore (exact hypervolume); no Optuna internals. Everything works on
:class:`Point` records, built from stored trials by :func:`points_from_trials` (the dashboard
builds them from its frames with the same function), so every reader agrees.

Conventions:

* **Losses.** Objectives become minimisation losses: a maximised objective is negated.
* **Feasible.** Only COMPLETE trials that were trained at the top fidelity and meet every
  constraint (budgets and floors) compete; screened-out, stopped (PRUNED) and failed ones never.
* **Dominance.** ``a`` dominates ``b`` when it is no worse in every objective and better in one;
  identical points do not dominate each other.
* **Dominated within noise.** A front member ``a`` is dominated within noise by a feasible ``b``
  when ``b`` is not significantly worse than ``a`` in any objective and significantly better in
  one, "significantly" meaning by more than ``sqrt(h_a**2 + h_b**2)``, the combined half-widths of
  the two figures' 95 % intervals (bootstrap intervals for accuracy and fairness, the median's CI
  for latency; a figure without an interval counts as exact).
* **Hypervolume.** Each objective is scaled to a loss in [0, 1] between its best value and its
  worst admissible value: the objective's declared ``best``/``worst`` (accuracy 1/0, ESFair's
  fairness part 1/3/0), else the bound of a constraint on its metric (latency: 0 to the latency
  budget), else the observed best and worst among the points. The reference point is 1.1 in every
  scaled loss (so a point at the worst admissible value still counts), and the value is moocore's
  exact hypervolume divided by the reference box ``1.1 ** k``: a fraction in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

REFERENCE = 1.1


@dataclass(frozen=True)
class Point:
    """One trial as the front sees it.

    Attributes:
        number: Trial number.
        values: Objective values in task order.
        feasible: Whether it competes (see the module docstring).
        half_widths: Half-width of each objective's 95 % interval (0 = exact).
    """

    number: int
    values: tuple[float, ...]
    feasible: bool
    half_widths: tuple[float, ...] = ()


@dataclass(frozen=True)
class FrontSpec:
    """How a study's objectives are compared and scaled.

    Attributes:
        names: Objective names.
        directions: ``maximize`` / ``minimize`` per objective.
        metrics: Dotted metric path of each objective.
        best: Best value of each objective (``None``: unknown).
        worst: Worst admissible value of each objective (``None``: unknown).
    """

    names: tuple[str, ...]
    directions: tuple[str, ...]
    metrics: tuple[str, ...]
    best: tuple[float | None, ...]
    worst: tuple[float | None, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "FrontSpec":
        """From a task record (``Task.record()``, stored on every study as ``hwsearch.task``)."""
        objectives = list(record.get("objectives") or [])
        bounds = {c.get("metric"): c.get("bound") for c in record.get("constraints") or []
                  if c.get("sense", "max") == "max"}
        names, directions, metrics, best, worst = [], [], [], [], []
        for o in objectives:
            names.append(str(o["name"]))
            directions.append(str(o["direction"]))
            metrics.append(str(o.get("metric") or o["name"]))
            best.append(_finite(o.get("best")))
            declared = _finite(o.get("worst"))
            bound = _finite(bounds.get(o.get("metric"))) if o.get("direction") == "minimize" else None
            worst.append(bound if bound is not None else declared)
        return cls(tuple(names), tuple(directions), tuple(metrics), tuple(best), tuple(worst))

    @classmethod
    def from_task(cls, task: Any) -> "FrontSpec":
        """From a ``spaces.task.Task``."""
        return cls.from_record(task.record())

    def losses(self, values: Sequence[Sequence[float]]) -> np.ndarray:
        """``(n, k)`` minimisation losses of objective value rows."""
        arr = np.asarray(values, dtype=float).reshape(-1, len(self.directions))
        signs = np.array([-1.0 if d == "maximize" else 1.0 for d in self.directions])
        return arr * signs

    def scaled(self, values: Sequence[Sequence[float]]) -> np.ndarray:
        """Objective values as losses in [0, 1] (see the module docstring; may exceed 1 past the bounds)."""
        arr = np.asarray(values, dtype=float).reshape(-1, len(self.directions))
        out = np.zeros_like(arr)
        for k, direction in enumerate(self.directions):
            column = arr[:, k]
            best = self.best[k]
            worst = self.worst[k]
            if best is None:
                best = float(column.max() if direction == "maximize" else column.min()) if len(column) else 0.0
            if worst is None:
                worst = float(column.min() if direction == "maximize" else column.max()) if len(column) else 1.0
            span = (best - worst) if direction == "maximize" else (worst - best)
            out[:, k] = (best - column if direction == "maximize" else column - best) / (span if span > 0 else 1.0)
        return out


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pareto_mask(losses: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``losses`` (n x k) that no other row dominates."""
    losses = np.asarray(losses, dtype=float)
    if losses.size == 0:
        return np.zeros(len(losses), dtype=bool)
    no_worse = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    better = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    return ~(no_worse & better).any(axis=0)


def nondominated_ranks(losses: np.ndarray) -> np.ndarray:
    """Non-dominated sorting rank of each row (0 = on the front), as NSGA-II defines it."""
    losses = np.asarray(losses, dtype=float)
    ranks = np.full(len(losses), -1, dtype=int)
    remaining = np.arange(len(losses))
    rank = 0
    while len(remaining):
        mask = pareto_mask(losses[remaining])
        ranks[remaining[mask]] = rank
        remaining = remaining[~mask]
        rank += 1
    return ranks


def hypervolume_contributions(scaled: np.ndarray, reference: float = REFERENCE) -> np.ndarray:
    """Exclusive hypervolume contribution of each row of ``scaled`` losses (0 for rows past the reference)."""
    import moocore

    scaled = np.asarray(scaled, dtype=float)
    out = np.zeros(len(scaled))
    inside = (scaled < reference).all(axis=1)
    if inside.any():
        out[inside] = moocore.hv_contributions(scaled[inside], ref=[reference] * scaled.shape[1])
    return out


def preference_order(values: Sequence[Sequence[float]], spec: FrontSpec) -> np.ndarray:
    """Indices of objective value rows, best first: by non-dominated rank, then by exclusive
    hypervolume contribution within the rank (larger first).

    The contribution measures how much of the front a point alone holds up, in the same scaled
    losses as :func:`hypervolume`: a point that extends the front far (much faster, much more
    accurate) ranks high, one squeezed between neighbours low. Unlike NSGA-II's crowding distance it
    gives the extremes a finite value, so the fastest (or fairest) point of a rung does not win
    every tie whatever its other figures.
    """
    ranks = nondominated_ranks(spec.losses(values))
    scaled = spec.scaled(values)
    contribution = np.zeros(len(ranks))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        contribution[members] = hypervolume_contributions(scaled[members])
    return np.lexsort((-contribution, ranks))


def front(points: Sequence[Point], spec: FrontSpec) -> list[Point]:
    """The non-dominated feasible points, in trial-number order."""
    pool = [p for p in points if p.feasible and all(math.isfinite(v) for v in p.values)]
    if not pool:
        return []
    mask = pareto_mask(spec.losses([p.values for p in pool]))
    return sorted((p for p, keep in zip(pool, mask) if keep), key=lambda p: p.number)


def dominated_within_noise(points: Sequence[Point], spec: FrontSpec) -> dict[int, int]:
    """Front members dominated within noise: ``{member number: number of a point that does it}``."""
    pool = [p for p in points if p.feasible and all(math.isfinite(v) for v in p.values)]
    members = front(pool, spec)
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in spec.directions])
    out: dict[int, int] = {}
    for a in members:
        for b in pool:
            if b.number == a.number:
                continue
            gain = (np.asarray(b.values) - np.asarray(a.values)) * signs
            noise = np.sqrt(np.square(_widths(a, len(signs))) + np.square(_widths(b, len(signs))))
            if (gain >= -noise).all() and (gain > noise).any():
                out[a.number] = b.number
                break
    return out


def _widths(point: Point, k: int) -> np.ndarray:
    widths = np.asarray(point.half_widths or (0.0,) * k, dtype=float)
    return np.where(np.isfinite(widths), widths, 0.0)


def hypervolume(points: Sequence[Point], spec: FrontSpec, reference: float = REFERENCE) -> float:
    """Hypervolume fraction of the feasible points (see the module docstring); 0 when none."""
    pool = [p for p in points if p.feasible and all(math.isfinite(v) for v in p.values)]
    return hypervolume_of_scaled(spec.scaled([p.values for p in pool]) if pool else np.zeros((0, len(spec.names))),
                                 reference)


def hypervolume_of_scaled(scaled: np.ndarray, reference: float = REFERENCE) -> float:
    """Hypervolume fraction of already scaled losses with reference ``reference`` in every axis."""
    import moocore

    scaled = np.asarray(scaled, dtype=float)
    if scaled.size == 0:
        return 0.0
    inside = scaled[(scaled < reference).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    k = scaled.shape[1]
    return float(moocore.hypervolume(inside, ref=[reference] * k)) / reference ** k


def hypervolume_history(points: Sequence[Point], spec: FrontSpec) -> list[tuple[int, float]]:
    """``(trial number, hypervolume of the feasible points up to it)`` in trial-number order."""
    ordered = sorted((p for p in points if p.feasible and all(math.isfinite(v) for v in p.values)),
                     key=lambda p: p.number)
    return [(p.number, hypervolume(ordered[: i + 1], spec)) for i, p in enumerate(ordered)]


def half_widths(metrics: Mapping[str, Any], spec: FrontSpec) -> tuple[float, ...]:
    """Half-width of each objective's 95 % interval in a stored metrics record (0 when none)."""
    intervals = metrics.get("intervals") or {}
    latency = metrics.get("latency") or {}
    out = []
    for path in spec.metrics:
        pair = intervals.get(path)
        if pair is None and path.startswith("latency.") and latency.get("ci_low_ms") is not None:
            pair = (latency["ci_low_ms"], latency["ci_high_ms"])
        out.append(abs(float(pair[1]) - float(pair[0])) / 2.0 if pair else 0.0)
    return tuple(out)


def points_from_trials(trials: Sequence[Any], spec: FrontSpec) -> list[Point]:
    """Front points of stored trials (COMPLETE with values; feasibility from the ``feasible`` attribute)."""
    from search import attrs

    out = []
    for t in trials:
        state = t.state.name if hasattr(t.state, "name") else str(t.state)
        if state != "COMPLETE" or not t.values:
            continue
        user = t.user_attrs
        feasible = bool(user.get(attrs.TRAINED)) and bool(user.get(attrs.FEASIBLE))
        metrics = user.get(attrs.METRICS) or {}
        out.append(Point(t.number, tuple(float(v) for v in t.values), feasible, half_widths(metrics, spec)))
    return out
