"""Shared helpers of the search benchmarks: hypervolume with a documented normalisation, summaries.

Hypervolume convention (every bench in this folder):

* Objectives are turned into **minimisation losses in [0, 1]** before any hypervolume is taken.
  On the esfair task: ``1 - accuracy``; ``1 - 3 * fairness_part`` (ESFair's fairness part lies in
  [0, 1/3], so this is 0 for SPD = 0 and 1 for SPD >= 0.2); ``latency_ms / latency_budget_ms``
  (1 at the budget; feasible trials lie in [0, 1]). On a problem with a known front each objective
  is divided by the front's nadir (its ideal is 0), so the true front spans [0, 1] per objective.
* The **reference point is (1.1, 1.1, 1.1)**: a model at chance-level fairness or at the latency
  budget still adds volume, a point worse than the reference adds none.
* Only feasible points count (trained, within the latency and size budgets).
* The value is pymoo's exact hypervolume (``pymoo.indicators.hv.HV``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

REFERENCE_POINT: tuple[float, float, float] = (1.1, 1.1, 1.1)
"""Reference point of every hypervolume, in normalised-loss space."""

SPHERE_FRONT_HV = REFERENCE_POINT[0] ** 3 - math.pi / 6.0
"""Exact hypervolume of the unit-sphere octant front (DTLZ2/4, WFG4-9 after normalisation) with
the reference point (1.1, 1.1, 1.1): the reference box minus the octant of the unit ball."""


def hypervolume(losses: Iterable[Sequence[float]], ref: Sequence[float] = REFERENCE_POINT) -> float:
    """Exact hypervolume dominated by ``losses`` (minimisation) up to ``ref``.

    Points that do not strictly dominate ``ref`` contribute nothing; an empty set has volume 0.
    """
    from pymoo.indicators.hv import HV

    ref_arr = np.asarray(ref, dtype=float)
    points = np.asarray([list(p) for p in losses], dtype=float).reshape(-1, len(ref_arr))
    points = points[np.all(points < ref_arr, axis=1)]
    if len(points) == 0:
        return 0.0
    return float(HV(ref_point=ref_arr)(points))


def esfair_losses(metrics: Mapping[str, Any], latency_budget_ms: float) -> tuple[float, float, float]:
    """A trained esfair trial's metrics as normalised losses (see the module docstring).

    Args:
        metrics: ``Metrics.to_dict()`` as stored on the trial.
        latency_budget_ms: The study's latency budget.
    """
    accuracy = float(metrics["accuracy"])
    fairness_part = float(metrics["fairness"]["fairness_part"])
    latency = float(metrics["latency"]["median_ms"])
    return (1.0 - accuracy, 1.0 - 3.0 * fairness_part, latency / latency_budget_ms)


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates (minimisation; duplicates all kept)."""
    arr = np.asarray(points, dtype=float)
    keep = []
    for i, p in enumerate(arr):
        dominated = np.any(np.all(arr <= p, axis=1) & np.any(arr < p, axis=1))
        if not dominated:
            keep.append(i)
    return keep


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when loss vector ``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median [min-max]`` of ``values``, e.g. ``0.51 [0.44-0.60]``; ``n/a`` when empty."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "n/a"
    med = statistics.median(finite)
    return f"{med:.{digits}f} [{min(finite):.{digits}f}-{max(finite):.{digits}f}]"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table with columns padded to their widest cell (markdown-compatible pipes)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
