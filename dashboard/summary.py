"""One row per study for the Studies page (pure)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from dashboard.data import STATES, latency_kind, score_column, state_counts
from dashboard.fidelity import budget_text, ladder_text
from dashboard.info import StudyInfo
from dashboard.pareto import COMPETING, FRONT_INFEASIBLE, FRONT_MEMBERS, FRONT_NOISE


def best_values(frame: pd.DataFrame, info: StudyInfo) -> dict[str, float]:
    """Best value of each objective and of the primary score over the competing trials (NaN when none).

    Keys: objective names, then the primary score's column.
    """
    usable = frame[frame["front"].isin(COMPETING)] if len(frame) else frame
    out: dict[str, float] = {}
    for objective in info.objectives:
        column = usable[objective.name].dropna()
        if column.empty:
            out[objective.name] = math.nan
        else:
            out[objective.name] = float(column.min() if objective.minimize else column.max())
    if info.primary_score:
        column = usable[score_column(info.primary_score)].dropna()
        out[score_column(info.primary_score)] = float(column.max()) if not column.empty else math.nan
    return out


def study_summary(info: StudyInfo, frame: pd.DataFrame) -> dict[str, Any]:
    """One row of the Studies page of a frame marked by :func:`dashboard.pareto.with_front`.

    Keys: study, space, device, latency (``FAKE``/``EMULATED``/``PREDICTED`` when so), trials, one
    count per state, infeasible (COMPLETE trials that do not compete: screened out, over a budget or
    under a floor), pareto (front members), within noise (of them), ``best <name>`` per objective
    and primary score, rungs, budget, last activity.
    """
    counts = state_counts(frame)
    marks = frame["front"] if len(frame) else pd.Series(dtype=object)
    row: dict[str, Any] = {
        "study": info.name,
        "space": info.space or "(not hwsearch)",
        "device": info.device_tag or "",
        "latency": latency_kind(info, frame),
        "trials": int(len(frame)),
    }
    row.update({state.lower(): counts[state] for state in STATES})
    row["infeasible"] = int((marks == FRONT_INFEASIBLE).sum())
    row["pareto"] = int(marks.isin(FRONT_MEMBERS).sum())
    row["within noise"] = int((marks == FRONT_NOISE).sum())
    for name, value in best_values(frame, info).items():
        row[f"best {name}"] = value
    row["rungs"] = ladder_text(info)
    row["budget"] = budget_text(info)
    activity = frame["last_activity"].dropna() if len(frame) else pd.Series(dtype=object)
    row["last activity"] = activity.max() if not activity.empty else None
    return row


def studies_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Study rows, most recently active first (studies without trials last)."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    frame["last activity"] = pd.to_datetime(frame["last activity"])
    return frame.sort_values("last activity", ascending=False, na_position="last").reset_index(drop=True)
