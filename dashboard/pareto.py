"""The front as every hwsearch reader computes it, marked on the trials frame (pure).

Fronts, dominance within noise and hypervolume are :mod:`search.front`'s, fed with
:func:`search.front.points_from_trials` and the study's ``FrontSpec``: the dashboard, the
launcher's report (``search.report.front_rows``) and ``search.export --pick`` see one front.
Only COMPLETE trials trained at the top rung that meet every budget and floor compete;
screened-out, stopped (PRUNED) and failed trials never do.

Each trial gets one ``front`` mark (:data:`FRONT_MARKS`), and ``dominated_by`` names, for a front
member dominated within noise, the trial that dominates it (``search.front`` picks the first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd
from optuna.trial import FrozenTrial

from dashboard.data import score_column
from dashboard.info import StudyInfo
from search.front import Point, dominated_within_noise, front, hypervolume, hypervolume_history, points_from_trials

FRONT_PARETO = "Pareto front"
FRONT_NOISE = "Pareto front, dominated within noise"
FRONT_DOMINATED = "dominated"
FRONT_INFEASIBLE = "infeasible (budget or floor)"
FRONT_STOPPED = "stopped at a lower rung"
FRONT_OTHER = "not complete"
FRONT_MARKS: tuple[str, ...] = (FRONT_PARETO, FRONT_NOISE, FRONT_DOMINATED, FRONT_INFEASIBLE, FRONT_STOPPED,
                                FRONT_OTHER)
FRONT_MEMBERS: tuple[str, ...] = (FRONT_PARETO, FRONT_NOISE)
"""Marks of the front's members (the CLI lists both, the latter with ``~``)."""
COMPETING: tuple[str, ...] = FRONT_MEMBERS + (FRONT_DOMINATED,)
"""Marks of the trials that compete for the front."""


@dataclass(frozen=True)
class FrontView:
    """A study's front, computed once per read.

    Attributes:
        points: The COMPLETE trials as :class:`search.front.Point` records.
        members: Numbers of the front's members, ascending.
        noise: ``{member: number of a trial that dominates it within noise}``.
    """

    points: Sequence[Point] = ()
    members: Sequence[int] = ()
    noise: dict[int, int] = field(default_factory=dict)

    @property
    def competing(self) -> set[int]:
        """Numbers of the trials that compete (feasible, finite values)."""
        return {p.number for p in self.points if p.feasible and all(math.isfinite(v) for v in p.values)}


def front_view(trials: Sequence[FrozenTrial], info: StudyInfo) -> FrontView:
    """The front of ``trials`` under the study's ``FrontSpec`` (see the module docstring)."""
    points = points_from_trials(trials, info.spec)
    return FrontView(points, [p.number for p in front(points, info.spec)],
                     dominated_within_noise(points, info.spec))


def with_front(frame: pd.DataFrame, view: FrontView) -> pd.DataFrame:
    """``frame`` with the ``front`` mark and ``dominated_by`` (trial number or NA) of every trial."""
    out = frame.copy()
    marks = pd.Series(FRONT_OTHER, index=out.index, dtype=object)
    marks[out["state"] == "COMPLETE"] = FRONT_INFEASIBLE
    marks[out["state"] == "PRUNED"] = FRONT_STOPPED
    numbers = out["number"].astype(int)
    marks[numbers.isin(view.competing)] = FRONT_DOMINATED
    marks[numbers.isin(view.members)] = FRONT_PARETO
    marks[numbers.isin(view.noise)] = FRONT_NOISE
    out["front"] = marks
    out["dominated_by"] = numbers.map(view.noise).astype("Int64")
    return out


def hypervolume_frame(view: FrontView, info: StudyInfo) -> pd.DataFrame:
    """Hypervolume fraction of the competing trials up to each one, by trial number.

    Returns:
        Frame ``number``, ``hypervolume`` (non-decreasing, in [0, 1]); empty when none competes.
        Scaling and reference point: :mod:`search.front`.
    """
    history = hypervolume_history(view.points, info.spec)
    return pd.DataFrame({"number": pd.Series([n for n, _ in history], dtype=int),
                         "hypervolume": pd.Series([v for _, v in history], dtype=float)})


def current_hypervolume(view: FrontView, info: StudyInfo) -> float:
    """Hypervolume fraction of every competing trial now (0 when none competes)."""
    return hypervolume(view.points, info.spec)


def export_picks(frame: pd.DataFrame, info: StudyInfo) -> dict[str, int]:
    """What ``search.export --pick`` chooses: ``{"best-score" | "best-<objective>": trial number}``.

    Among the front members not dominated within noise, in trial-number order, the first with the
    best primary score or objective value (``search.export.pick_trial``'s rule). Empty without a front.
    """
    rows = frame[frame["front"] == FRONT_PARETO].sort_values("number", kind="stable")
    picks: dict[str, int] = {}
    if rows.empty:
        return picks
    score = info.primary_score
    if score is not None and rows[score_column(score)].notna().any():
        picks["best-score"] = int(rows.loc[rows[score_column(score)].idxmax(), "number"])
    for objective in info.objectives:
        signed = rows[objective.name] * (-1.0 if objective.minimize else 1.0)
        if signed.notna().any():
            picks[f"best-{objective.name}"] = int(rows.loc[signed.idxmax(), "number"])
    return picks
