"""What moves the objectives: Optuna's parameter importances and per-dimension effects (pure).

Importances of objective ``o`` are Optuna's, computed on a throw-away in-memory single-objective
study holding the trials whose ``o`` value the trials frame knows (COMPLETE, finite; untrained
trials count for latency only), with Optuna's direction of ``o``. Parameters whose distribution
differs between those trials are left out, as Optuna requires one distribution per parameter.
"""

from __future__ import annotations

import math
from typing import Sequence

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution
from optuna.importance import (
    BaseImportanceEvaluator,
    FanovaImportanceEvaluator,
    PedAnovaImportanceEvaluator,
    get_param_importances,
)
from optuna.trial import FrozenTrial, create_trial

from dashboard.data import PARAM_PREFIX
from dashboard.info import StudyInfo
from spaces import FAIRNESS_METHODS

EVALUATORS: dict[str, str] = {
    "fanova": "fANOVA (Optuna's default)",
    "ped-anova": "PED-ANOVA (fast)",
}
EFFECT_DIMENSIONS: tuple[str, ...] = ("quant", "resolution", "prune_ratio", "width", "backbone", "fairness_method")
"""Dimensions the Insight page offers first (others follow in column order)."""
MIN_TRIALS_FOR_IMPORTANCE = 3


class InsightError(ValueError):
    """Importances cannot be computed; the message says why."""


def make_evaluator(name: str) -> BaseImportanceEvaluator:
    """The importance evaluator named ``name`` (a key of :data:`EVALUATORS`), seeded."""
    if name == "fanova":
        return FanovaImportanceEvaluator(n_trees=32, seed=0)
    if name == "ped-anova":
        return PedAnovaImportanceEvaluator()
    raise InsightError(f"unknown importance evaluator {name!r}; known: {', '.join(EVALUATORS)}")


def _shared_distributions(trials: Sequence[FrozenTrial]) -> dict[str, BaseDistribution]:
    """Parameters present in every trial with one distribution."""
    if not trials:
        return {}
    shared = dict(trials[0].distributions)
    for trial in trials[1:]:
        for name in list(shared):
            if trial.distributions.get(name) != shared[name]:
                del shared[name]
    return shared


def importance_trials(
    trials: Sequence[FrozenTrial], frame: pd.DataFrame, objective: str
) -> list[FrozenTrial]:
    """Single-objective copies of the trials whose ``objective`` value is known in ``frame``."""
    known = frame.loc[(frame["state"] == "COMPLETE") & frame[objective].notna(), ["number", objective]]
    value_of = dict(zip(known["number"].astype(int), known[objective].astype(float)))
    chosen = [t for t in trials if t.number in value_of and math.isfinite(value_of[t.number])]
    shared = _shared_distributions(chosen)
    return [
        create_trial(
            value=value_of[t.number],
            params={k: t.params[k] for k in shared},
            distributions=shared,
        )
        for t in chosen
    ]


def param_importances(
    trials: Sequence[FrozenTrial], frame: pd.DataFrame, info: StudyInfo, objective: str,
    evaluator: str = "fanova",
) -> pd.DataFrame:
    """Optuna's importance of each parameter for ``objective``.

    Returns:
        Frame ``param``, ``importance`` (normalised to sum 1), most important first.

    Raises:
        InsightError: Too few usable trials, no parameter varies, or Optuna refuses.
    """
    spec = next((o for o in info.objectives if o.name == objective), None)
    if spec is None:
        raise InsightError(f"study {info.name!r} has no objective {objective!r}")
    copies = importance_trials(trials, frame, objective)
    if len(copies) < MIN_TRIALS_FOR_IMPORTANCE:
        raise InsightError(
            f"{objective}: {len(copies)} trial(s) with a known value; importances need at least "
            f"{MIN_TRIALS_FOR_IMPORTANCE}"
        )
    if not copies[0].distributions:
        raise InsightError(f"{objective}: no parameter shared by all trials")
    direction = optuna.study.StudyDirection.MINIMIZE if spec.minimize else optuna.study.StudyDirection.MAXIMIZE
    study = optuna.create_study(direction=direction, storage=optuna.storages.InMemoryStorage())
    study.add_trials(copies)
    try:
        scores = get_param_importances(study, evaluator=make_evaluator(evaluator))
    except (ValueError, RuntimeError) as exc:
        raise InsightError(f"{objective}: Optuna could not compute importances: {exc}") from exc
    table = pd.DataFrame({"param": list(scores), "importance": [float(v) for v in scores.values()]})
    return table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def effect_dimensions(frame: pd.DataFrame) -> list[str]:
    """Parameters to offer on the Insight page: :data:`EFFECT_DIMENSIONS` first, then the rest."""
    present = [c[len(PARAM_PREFIX):] for c in frame.columns if c.startswith(PARAM_PREFIX)]
    first = [d for d in EFFECT_DIMENSIONS if d in present]
    return first + [d for d in present if d not in first]


def dimension_effects(frame: pd.DataFrame, dimension: str, metric: str) -> pd.DataFrame:
    """How ``metric`` varies with the value of parameter ``dimension``.

    Only COMPLETE trials with a finite ``metric`` count (so latency includes untrained,
    over-budget trials and accuracy does not).

    Returns:
        Frame ``value``, ``trials``, ``median``, ``mean``, ``min``, ``max``, one row per value,
        values in natural order (numeric when they all are).
    """
    column = PARAM_PREFIX + dimension
    columns = ["value", "trials", "median", "mean", "min", "max"]
    if column not in frame.columns or metric not in frame.columns:
        return pd.DataFrame(columns=columns)
    rows = frame[(frame["state"] == "COMPLETE") & frame[metric].notna() & frame[column].notna()]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    grouped = rows.groupby(rows[column].astype(str))[metric]
    table = pd.DataFrame({
        "trials": grouped.size(), "median": grouped.median(), "mean": grouped.mean(),
        "min": grouped.min(), "max": grouped.max(),
    }).reset_index(names="value")
    numeric = pd.to_numeric(table["value"], errors="coerce")
    order = numeric if numeric.notna().all() else table["value"]
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)[columns]


def fairness_figures(info: StudyInfo) -> dict[str, str]:
    """The figures a fairness method moves, by label: the accuracy objective (the one whose metric is
    ``accuracy``), minority-group accuracy and SPD, mapped to their frame columns."""
    accuracy = next((o.name for o in info.objectives if o.metric == "accuracy"), None)
    figures = {"accuracy": accuracy} if accuracy else {}
    figures.update({"minority accuracy": "minority_accuracy", "SPD": "spd"})
    return figures


def fairness_method_effects(frame: pd.DataFrame, info: StudyInfo) -> pd.DataFrame:
    """Per fairness method: trials, then median, 25th and 75th percentile of each figure.

    Only COMPLETE trained trials count (their top-rung figures); a trial of an older study without
    the ``fairness_method`` parameter counts as ``none``. Minority accuracy is
    ``per_group_accuracy[fairness.minority_group]``.

    Returns:
        Frame ``method``, ``trials`` and ``<figure> median`` / ``<figure> q25`` / ``<figure> q75``
        per :func:`fairness_figures` label, methods in :data:`spaces.FAIRNESS_METHODS` order (others
        after); empty when no trial counts.
    """
    figures = fairness_figures(info)
    columns = ["method", "trials"] + [f"{label} {stat}" for label in figures for stat in ("median", "q25", "q75")]
    rows = frame[(frame["state"] == "COMPLETE") & frame["trained"]] if len(frame) else frame
    if rows.empty:
        return pd.DataFrame(columns=columns)
    grouped = rows.groupby(rows["fairness_method"].fillna("none").astype(str))
    table = pd.DataFrame({"trials": grouped.size()})
    for label, column in figures.items():
        table[f"{label} median"] = grouped[column].median()
        table[f"{label} q25"] = grouped[column].quantile(0.25)
        table[f"{label} q75"] = grouped[column].quantile(0.75)
    order = {m: i for i, m in enumerate(FAIRNESS_METHODS)}
    table = table.reset_index(names="method")
    table = table.iloc[table["method"].map(lambda m: (order.get(m, len(order)), m)).argsort(kind="stable")]
    return table.reset_index(drop=True)[columns]
