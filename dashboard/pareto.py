"""Pareto dominance with constraints, and hypervolume over trials (pure numpy/pandas).

Dominance follows Optuna's constrained rule: only COMPLETE, feasible trials with every objective
value finite compete; among them, a trial is on the front when no other trial is at least as
good in every objective and strictly better in one. Identical points do not dominate each other.

Hypervolume (reference point and normalisation):
    Each objective is turned into a loss (maximised ones negated) and scaled to [0, 1] by the
    ideal (best) and nadir (worst) loss over the trials that compete (see above) at the time the
    frame was read; an objective on which they all agree scales by 1. The reference point is
    1.1 in every scaled loss (the nadir plus 10 %, so points on the nadir still count), and the
    figure reported is the dominated volume divided by the reference box volume ``1.1 ** k``, a
    fraction in [0, 1]. It compares progress within one study; it is not comparable across
    studies, and it shifts when a new trial moves the ideal or the nadir. The volume itself is
    Optuna's exact ``compute_hypervolume`` (WFG).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from optuna._hypervolume import compute_hypervolume

from dashboard.data import StudyInfo

REFERENCE_MARGIN = 1.1
FRONT_PARETO = "Pareto front"
FRONT_DOMINATED = "dominated"
FRONT_INFEASIBLE = "infeasible (over budget)"
FRONT_OTHER = "not complete"


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``losses`` (n x k, lower is better) that no other row dominates."""
    losses = np.asarray(losses, dtype=float)
    if losses.size == 0:
        return np.zeros(len(losses), dtype=bool)
    no_worse = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    better = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominates = no_worse & better
    return np.asarray(~dominates.any(axis=0), dtype=bool)


def to_losses(frame: pd.DataFrame, info: StudyInfo) -> np.ndarray:
    """Objective columns of ``frame`` as losses (maximised objectives negated), n x k."""
    columns = [
        frame[o.name].to_numpy(dtype=float) * (1.0 if o.minimize else -1.0) for o in info.objectives
    ]
    return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))


def competing(frame: pd.DataFrame, info: StudyInfo) -> pd.Series:
    """Rows that compete for the front: COMPLETE, feasible, all objectives finite."""
    finite = np.isfinite(to_losses(frame, info)).all(axis=1) if len(frame) else np.zeros(0, bool)
    return (frame["state"] == "COMPLETE") & frame["feasible"] & pd.Series(finite, index=frame.index)


def with_front(frame: pd.DataFrame, info: StudyInfo) -> pd.DataFrame:
    """``frame`` with a ``front`` column: Pareto front, dominated, infeasible or not complete."""
    out = frame.copy()
    front = pd.Series(FRONT_OTHER, index=out.index, dtype=object)
    complete = out["state"] == "COMPLETE"
    front[complete & ~out["feasible"]] = FRONT_INFEASIBLE
    mask = competing(out, info)
    front[mask] = FRONT_DOMINATED
    if mask.any():
        on_front = non_dominated(to_losses(out[mask], info))
        front[out.index[mask.to_numpy()][on_front]] = FRONT_PARETO
    out["front"] = front
    return out


def pareto_numbers(frame: pd.DataFrame, info: StudyInfo) -> list[int]:
    """Trial numbers on the Pareto front, ascending."""
    marked = with_front(frame, info)
    return sorted(int(n) for n in marked.loc[marked["front"] == FRONT_PARETO, "number"])


def normalised_losses(losses: np.ndarray) -> np.ndarray:
    """Scale each loss column to [0, 1] by its min (ideal) and max (nadir); a flat column to 0."""
    ideal = losses.min(axis=0)
    span = losses.max(axis=0) - ideal
    span[span <= 0] = 1.0
    return (losses - ideal) / span


def hypervolume(points: np.ndarray, reference: Sequence[float]) -> float:
    """Exact volume dominated by ``points`` (losses) and bounded by ``reference``.

    Points not strictly better than the reference in every coordinate add nothing.
    """
    ref = np.asarray(reference, dtype=float)
    points = np.asarray(points, dtype=float)
    inside = points[(points < ref).all(axis=1)] if len(points) else points
    if len(inside) == 0:
        return 0.0
    return float(compute_hypervolume(inside, ref))


def hypervolume_history(frame: pd.DataFrame, info: StudyInfo) -> pd.DataFrame:
    """Hypervolume fraction after each competing trial, by trial number.

    Returns:
        Frame with columns ``number`` and ``hypervolume`` (non-decreasing, in [0, 1]), one row
        per competing trial in trial-number order; empty when no trial competes. See the module
        docstring for the normalisation and the reference point.
    """
    mask = competing(frame, info)
    rows = frame[mask].sort_values("number")
    if rows.empty:
        return pd.DataFrame({"number": pd.Series(dtype=int), "hypervolume": pd.Series(dtype=float)})
    scaled = normalised_losses(to_losses(rows, info))
    k = scaled.shape[1]
    reference = [REFERENCE_MARGIN] * k
    box = REFERENCE_MARGIN ** k
    history: list[float] = []
    front = np.zeros((0, k))
    current = 0.0
    for point in scaled:
        if len(front) and ((front <= point).all(axis=1)).any():
            history.append(current)
            continue
        front = np.vstack([front, point])
        front = front[non_dominated(front)]
        current = hypervolume(front, reference) / box
        history.append(current)
    return pd.DataFrame({"number": rows["number"].astype(int).to_numpy(), "hypervolume": history})
