"""Fidelity: rung records, promotion decisions and the study's budget, shaped for the pages (pure).

A trial trains in rungs (``hwsearch.rungs`` epochs each); after each rung below the top,
successive halving decides whether it continues (``decision`` in the rung record). Records a
continuation copied from the trial it continues (``copied_from``) are counted once, on the
trial that produced them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import pandas as pd
from optuna.trial import FrozenTrial

from dashboard.data import figure_interval, half_width_column, record_epochs, score_column
from dashboard.info import StudyInfo
from search import attrs

OUTCOME_PROMOTED = "promoted"
OUTCOME_STOPPED = "stopped here"
OUTCOME_TOP = "finished the top rung"
OUTCOME_PENDING = "undecided (running, parked or failed)"
OUTCOMES: tuple[str, ...] = (OUTCOME_PROMOTED, OUTCOME_STOPPED, OUTCOME_TOP, OUTCOME_PENDING)


def decision_text(decision: Mapping[str, Any] | None) -> str:
    """``"promoted: <reason>"`` / ``"stopped: <reason>"``, ``""`` when no decision was made."""
    if not decision:
        return ""
    verdict = "promoted" if decision.get("promote") else "stopped"
    return f"{verdict}: {decision.get('reason') or 'no reason stored'}"


def _resumed_text(resumed: Mapping[str, Any] | None) -> str:
    if not resumed:
        return ""
    return f"trial {resumed.get('trial', '?')}'s rung {resumed.get('rung', '?')} checkpoint"


def rung_history(user_attrs: Mapping[str, Any], info: StudyInfo) -> pd.DataFrame:
    """One row per rung record of a trial, lowest rung first.

    Columns: ``rung``, ``epochs``, one per objective (the rung's values) and its half-width when
    the rung stored an interval, one per task score, ``feasible`` (budgets at that rung),
    ``seconds``, ``decision`` (:func:`decision_text`), ``resumed from``, ``copied from``.
    """
    rows = []
    for rung, record in sorted(attrs.rung_records(dict(user_attrs)).items()):
        values = list(record.get("values") or [])
        figures = record.get("figures") or {}
        row: dict[str, Any] = {"rung": rung, "epochs": record_epochs(record)}
        for index, objective in enumerate(info.objectives):
            row[objective.name] = float(values[index]) if index < len(values) else math.nan
            pair = figure_interval(figures, objective.metric)
            row[half_width_column(objective.name)] = abs(pair[1] - pair[0]) / 2 if pair else math.nan
        scores = figures.get("scores") or {}
        for name in info.scores:
            row[score_column(name)] = float(scores[name]) if scores.get(name) is not None else math.nan
        row.update({
            "feasible": bool(record.get("feasible")), "seconds": record.get("seconds"),
            "decision": decision_text(record.get("decision")),
            "resumed from": _resumed_text(record.get("resumed_from")),
            "copied from": "" if record.get("copied_from") is None else f"trial {record['copied_from']}",
        })
        rows.append(row)
    return pd.DataFrame(rows)


def rung_epochs(info: StudyInfo, rung: Any) -> str:
    """``"rung r (E epochs)"`` with the study's ladder (``"rung r"`` when it is unknown, ``""`` for no rung)."""
    if rung is None or (isinstance(rung, float) and math.isnan(rung)):
        return ""
    index = int(rung)
    if 0 <= index < len(info.rungs):
        epochs = info.rungs[index]
        share = info.first_look if index == 0 else 1.0
        return f"rung {index} ({attrs.rung_label(epochs, share)} epoch{'s' if epochs != 1 and share >= 1 else ''})"
    return f"rung {index}"


def stopped_text(row: Mapping[str, Any], info: StudyInfo) -> str:
    """``"stopped at rung r (E epochs): <reason>"`` for a PRUNED trial's frame row.

    A PRUNED trial of a study before rungs has no rung and no ``stopped``: it was stopped before
    training, and its infeasible reason shows.
    """
    reason = row.get("stopped") or row.get("infeasible_reason") or "no reason stored"
    where = rung_epochs(info, row.get("rung"))
    return f"stopped at {where}: {reason}" if where else f"stopped before training: {reason}"


def _outcome(trial: FrozenTrial, rung: int, record: Mapping[str, Any], top: int, last: int) -> str:
    if (record.get("decision") or {}).get("promote"):
        return OUTCOME_PROMOTED
    if trial.state.name == "PRUNED" and rung == last:
        return OUTCOME_STOPPED
    if trial.state.name == "COMPLETE" and rung == top:
        return OUTCOME_TOP
    return OUTCOME_PENDING


def rung_occupancy(trials: Iterable[FrozenTrial], info: StudyInfo) -> pd.DataFrame:
    """Candidates that finished each rung, by what followed.

    Returns:
        Frame ``rung``, ``epochs``, ``candidates`` and one count per outcome (:data:`OUTCOMES`),
        one row per rung of the ladder (and any other rung a record names); empty when no trial
        has a rung record and the study has no ladder.
    """
    counts: dict[int, dict[str, int]] = {r: {} for r in range(len(info.rungs))}
    epochs: dict[int, Any] = {r: e * (info.first_look if r == 0 else 1.0) for r, e in enumerate(info.rungs)}
    top = len(info.rungs) - 1
    for trial in trials:
        records = attrs.rung_records(dict(trial.user_attrs))
        last = max(records) if records else -1
        for rung, record in records.items():
            if record.get("copied_from") is not None:
                continue
            outcome = _outcome(trial, rung, record, top if top >= 0 else last, last)
            counts.setdefault(rung, {})
            counts[rung][outcome] = counts[rung].get(outcome, 0) + 1
            epochs.setdefault(rung, record_epochs(record))
    rows = [{"rung": r, "epochs": epochs.get(r), "candidates": sum(c.values()), **{o: c.get(o, 0) for o in OUTCOMES}}
            for r, c in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["rung", "epochs", "candidates", *OUTCOMES])


def budget_text(info: StudyInfo) -> str:
    """``"412 s of 600 s spent (69 %)"``, ``"412 s spent"`` without a known budget, ``""`` without either."""
    if info.spent_s is None:
        return ""
    budget = info.budget_s
    if not budget:
        return f"{info.spent_s:.0f} s spent"
    return f"{info.spent_s:.0f} s of {budget:.0f} s spent ({info.spent_s / budget:.0%})"


def ladder_text(info: StudyInfo) -> str:
    """``"1 → 3 → 9 epochs, η = 3"`` (``""`` for a study without rungs)."""
    if not info.rungs:
        return ""
    eta = f", η = {info.eta}" if info.eta else ""
    return attrs.ladder_label(info.rungs, info.first_look) + f" epochs{eta}"
