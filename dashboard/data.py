"""Pure data shaping: Optuna trials into the one frame every page reads.

Nothing here touches Streamlit or the database: functions take ``FrozenTrial`` objects (and the
:class:`~dashboard.info.StudyInfo` of their study) and return frames, so they are tested alone.
The user attributes read are those of :mod:`search.attrs` and nothing else.

Rules shared by every page:
    * Objective columns are named after the task's objectives (``accuracy``, ``latency_ms``) and
      hold the trial's Optuna values; a trial without values (PRUNED: stopped at a lower rung by
      successive halving, or parked) shows the values of its highest finished rung.
    * A trial that was not trained (screened out: over a budget before training) has measured
      latency only: its other objective columns are NaN whatever placeholder values it carries.
    * ``± <objective>`` holds the half-width of the objective's 95 % interval (bootstrap for
      accuracy and fairness, the median's CI for latency), NaN when the trial stored none.
    * Score columns (:func:`score_column`) and detail columns (the detail's label) are the ones
      the study's task names; metrics of older studies that stored ``esfair_score`` read it as
      the score ``esfair``.
    * ``feasible`` is the ``feasible`` attribute, else "every ``constraint`` value <= 0", else
      "the trial is COMPLETE" (a study without constraints).
    * ``latency_source`` is ``measured``, ``emulated``, ``predicted`` or ``fake``; every view of
      a figure that is not ``measured`` says so in capitals (FAKE, EMULATED, PREDICTED).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable, Mapping

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from dashboard.info import StudyInfo, as_mapping
from evaluators.contracts import LatencyResult
from search import attrs
from spaces import Candidate, CandidateError
from spaces.task import metric_value

PARAM_PREFIX = "param."
"""Frame columns holding candidate parameters are ``param.<name>``."""
HALF_WIDTH_PREFIX = "± "
"""Frame columns holding an objective's 95 % half-width are ``± <objective>``."""
STATES: tuple[str, ...] = tuple(state.name for state in TrialState)
FAKE_LABEL = "FAKE"
SOURCE_LABELS: dict[str, str] = {"fake": FAKE_LABEL, "emulated": "EMULATED", "predicted": "PREDICTED"}
"""Latency sources that are not a measurement on the device, and how every page labels them."""
NO_FAIRNESS_METHOD = "none"


def score_column(name: str) -> str:
    """Frame column of the task's score ``name``."""
    return f"{name} score"


def half_width_column(objective: str) -> str:
    """Frame column of the 95 % half-width of ``objective``."""
    return HALF_WIDTH_PREFIX + objective


def trial_metrics(user_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's ``metrics`` record, with a legacy ``esfair_score`` read as ``scores["esfair"]``."""
    metrics = as_mapping(user_attrs.get(attrs.METRICS))
    if metrics and "scores" not in metrics:
        legacy = metrics.get("esfair_score")
        metrics["scores"] = {} if legacy is None else {"esfair": legacy}
    return metrics


def figure_interval(metrics: Mapping[str, Any], path: str) -> tuple[float, float] | None:
    """The 95 % interval of the figure at ``path``: ``intervals[path]``, else the latency median's CI.

    The same rule as :func:`search.front.half_widths`, which the front uses; None when none is stored.
    """
    pair = (metrics.get("intervals") or {}).get(path)
    if pair is None and path.startswith("latency."):
        latency = metrics.get("latency") or {}
        if latency.get("ci_low_ms") is not None and latency.get("ci_high_ms") is not None:
            pair = (latency["ci_low_ms"], latency["ci_high_ms"])
    return (float(pair[0]), float(pair[1])) if pair else None


def latency_record(trial_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's latency record: ``latency``, else ``metrics.latency``, else ``screen.latency``."""
    for candidate in (
        trial_attrs.get(attrs.LATENCY),
        as_mapping(trial_attrs.get(attrs.METRICS)).get("latency"),
        as_mapping(trial_attrs.get(attrs.SCREEN)).get("latency"),
    ):
        if isinstance(candidate, Mapping) and candidate:
            return dict(candidate)
    return {}


def latency_source(record: Mapping[str, Any]) -> str:
    """``fake``, ``emulated``, ``predicted`` or ``measured`` (``""`` without a record)."""
    if not record:
        return ""
    if record.get("fake") or record.get("source") == "fake":
        return "fake"
    return str(record.get("source") or "measured")


def latency_label(record: Mapping[str, Any]) -> str:
    """Where a latency figure comes from, as ``LatencyResult.label()`` says it (FAKE, EMULATED, ...)."""
    if not record:
        return ""
    try:
        return LatencyResult.from_dict(record).label()
    except (TypeError, ValueError):
        device = record.get("device") or record.get("device_tag") or "unknown device"
        text = f"{device} [{record.get('backend', '?')}, {record.get('threads', '?')} thr]"
        label = SOURCE_LABELS.get(latency_source(record))
        return f"{label} latency (not measured): {text}" if label else text


def last_rung_record(user_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The record of the trial's highest finished rung (``rung`` attribute, else the highest stored)."""
    records = attrs.rung_records(dict(user_attrs))
    if not records:
        return {}
    top = user_attrs.get(attrs.RUNG)
    return dict(records.get(int(top)) if isinstance(top, int) and int(top) in records else records[max(records)])


def candidate_params(trial: FrozenTrial) -> dict[str, Any]:
    """The candidate's parameters: the trial's params overlaid with the ``candidate`` attribute.

    The attribute wins: it is what was trained (``--override`` values included).
    """
    params = dict(trial.params)
    params.update(as_mapping(trial.user_attrs.get(attrs.CANDIDATE)))
    return params


def candidate_text(trial: FrozenTrial) -> str:
    """``candidate_text`` attribute, else ``Candidate.describe()``, else ``k=v`` pairs."""
    text = trial.user_attrs.get(attrs.CANDIDATE_TEXT)
    if text:
        return str(text)
    params = candidate_params(trial)
    try:
        return Candidate.from_params(params).describe()
    except (CandidateError, TypeError, ValueError):
        return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _feasible(trial: FrozenTrial) -> bool:
    flag = trial.user_attrs.get(attrs.FEASIBLE)
    if isinstance(flag, bool):
        return flag
    constraint = trial.user_attrs.get(attrs.CONSTRAINT)
    if isinstance(constraint, (list, tuple)) and constraint:
        return all(float(c) <= 0 for c in constraint)
    return trial.state == TrialState.COMPLETE


def _trained(trial: FrozenTrial) -> bool:
    flag = trial.user_attrs.get(attrs.TRAINED)
    if isinstance(flag, bool):
        return flag
    return bool(trial.user_attrs.get(attrs.METRICS))


def _objective_values(trial: FrozenTrial, info: StudyInfo, trained: bool, latency: Mapping[str, Any],
                      rung: Mapping[str, Any]) -> dict[str, float]:
    values = list(trial.values) if trial.values is not None else list(rung.get("values") or [])
    out: dict[str, float] = {}
    for index, objective in enumerate(info.objectives):
        value = float(values[index]) if index < len(values) else math.nan
        if objective.is_latency and math.isnan(value) and "median_ms" in latency:
            value = float(latency["median_ms"])
        if not trained and not objective.is_latency:
            value = math.nan
        out[objective.name] = value
    return out


def _half_widths(metrics: Mapping[str, Any], info: StudyInfo) -> dict[str, float]:
    out = {}
    for objective in info.objectives:
        pair = figure_interval(metrics, objective.metric) if metrics else None
        out[half_width_column(objective.name)] = abs(pair[1] - pair[0]) / 2 if pair else math.nan
    return out


def _task_figures(metrics: Mapping[str, Any], info: StudyInfo) -> dict[str, float]:
    scores = metrics.get("scores") or {}
    out = {score_column(n): float(scores[n]) if scores.get(n) is not None else math.nan for n in info.scores}
    for detail in info.details:
        value = metric_value(metrics, detail.metric)
        out[detail.label] = math.nan if value is None else value
    return out


def _minority_accuracy(metrics: Mapping[str, Any]) -> float:
    minority = (metrics.get("fairness") or {}).get("minority_group")
    value = (metrics.get("per_group_accuracy") or {}).get(minority) if minority is not None else None
    return math.nan if value is None else float(value)


def record_epochs(record: Mapping[str, Any]) -> float | None:
    """Epochs behind a rung record's figures (a first look's share of an epoch counted as such);
    ``None`` when the record names no epochs."""
    epochs = record.get("epochs")
    return None if epochs is None else float(epochs) * float(record.get("epoch_share") or 1.0)


def _epochs(metrics: Mapping[str, Any], rung: Mapping[str, Any]) -> float:
    """Epochs behind the trial's figures (those of its last rung; a first look counts its share)."""
    epochs = record_epochs({**rung, "epochs": metrics.get("epochs") or rung.get("epochs") or None})
    return math.nan if epochs is None else epochs


def trial_row(trial: FrozenTrial, info: StudyInfo) -> dict[str, Any]:
    """One trial as a flat row (see the module docstring for the rules)."""
    user = trial.user_attrs
    latency = latency_record(user)
    metrics = trial_metrics(user)
    rung = last_rung_record(user)
    fairness = metrics.get("fairness") or {}
    trained = _trained(trial)
    duration = None
    if trial.datetime_start and trial.datetime_complete:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    params = candidate_params(trial)
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
        "last_activity": _last_activity(trial),
        "duration_s": duration,
        "feasible": _feasible(trial),
        "trained": trained,
        "baseline": str(user.get(attrs.BASELINE) or ""),
        "infeasible_reason": str(user.get(attrs.INFEASIBLE_REASON) or ""),
        "fail_reason": str(user.get(attrs.FAIL_REASON) or ""),
        "stopped": str(user.get(attrs.STOPPED) or ""),
        "rung": float(rung["rung"]) if rung.get("rung") is not None else math.nan,
        "epochs": _epochs(metrics, rung),
        "continues": user.get(attrs.CONTINUES),
        "candidate": candidate_text(trial),
        "fairness_method": str(params.get("fairness_method") or NO_FAIRNESS_METHOD),
        "fake_latency": latency_source(latency) == "fake",
        "latency_source": latency_source(latency),
        "latency_label": latency_label(latency),
        "latency_device": str(latency.get("device") or ""),
        "under_load": bool(latency.get("under_load", False)),
        "latency_p90_ms": latency.get("p90_ms", math.nan),
        "minority_accuracy": _minority_accuracy(metrics),
        "spd": fairness.get("spd", math.nan),
        "worst_group_accuracy": fairness.get("worst_group_accuracy", math.nan),
        "size_mb": metrics["size_bytes"] / 1e6 if "size_bytes" in metrics else math.nan,
        "artifact_path": str(user.get(attrs.ARTIFACT_PATH) or metrics.get("artifact_path") or ""),
    }
    row.update(_objective_values(trial, info, trained, latency, rung))
    row.update(_half_widths(metrics, info))
    row.update(_task_figures(metrics, info))
    for key, value in params.items():
        row[PARAM_PREFIX + key] = value
    return row


def _last_activity(trial: FrozenTrial) -> datetime | None:
    return trial.datetime_complete or trial.datetime_start


BASE_COLUMNS: tuple[str, ...] = (
    "number", "state", "datetime_start", "datetime_complete", "last_activity", "duration_s",
    "feasible", "trained", "baseline", "infeasible_reason", "fail_reason", "stopped", "rung", "epochs",
    "continues", "candidate", "fairness_method", "fake_latency", "latency_source", "latency_label",
    "latency_device", "under_load", "latency_p90_ms", "minority_accuracy", "spd", "worst_group_accuracy",
    "size_mb", "artifact_path",
)
BOOL_COLUMNS: tuple[str, ...] = ("feasible", "trained", "fake_latency", "under_load")


def task_columns(info: StudyInfo) -> list[str]:
    """Columns the study's task names: objectives, their half-widths, details, scores."""
    return (info.objective_names + [half_width_column(n) for n in info.objective_names]
            + [d.label for d in info.details] + [score_column(s) for s in info.scores])


def trials_frame(trials: Iterable[FrozenTrial], info: StudyInfo) -> pd.DataFrame:
    """All trials of a study, one row each, sorted by trial number.

    Columns: :data:`BASE_COLUMNS`, :func:`task_columns` and ``param.<name>`` per parameter. An
    empty study gives an empty frame with the base and task columns.
    """
    rows = [trial_row(t, info) for t in trials]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(BASE_COLUMNS) + task_columns(info))
    for name in task_columns(info) + ["rung", "epochs", "minority_accuracy", "spd", "worst_group_accuracy"]:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in BOOL_COLUMNS:
        frame[name] = frame[name].astype(bool)
    return frame.sort_values("number", kind="stable").reset_index(drop=True)


def param_columns(frame: pd.DataFrame) -> list[str]:
    """Parameter names present in ``frame`` (without the ``param.`` prefix), in column order."""
    return [c[len(PARAM_PREFIX):] for c in frame.columns if c.startswith(PARAM_PREFIX)]


def state_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Number of trials in each Optuna state (every state present, zeros included)."""
    counts = frame["state"].value_counts() if len(frame) else pd.Series(dtype=int)
    return {state: int(counts.get(state, 0)) for state in STATES}


def latency_kind(info: StudyInfo, frame: pd.DataFrame) -> str:
    """The study's latency in one word: ``FAKE``, ``EMULATED`` or ``PREDICTED`` when any figure is
    (in that order of precedence, or the backend is fake), else the backend."""
    sources = set(frame["latency_source"]) if "latency_source" in frame.columns else set()
    if info.latency_backend == "fake":
        sources.add("fake")
    for source, label in SOURCE_LABELS.items():
        if source in sources:
            return label
    return info.latency_backend or "unknown"


def has_groups(info: StudyInfo, frame: pd.DataFrame) -> bool:
    """True when the study's figures have groups (its task needs them, or a trial measured them)."""
    if info.needs_groups:
        return True
    return bool(len(frame)) and bool(frame["minority_accuracy"].notna().any())


def projection_pairs(info: StudyInfo) -> list[tuple[str, str]]:
    """2-D projections ``(x, y)``: every pair of objectives, the later one on x.

    For esfair this is (latency_ms, accuracy), (latency_ms, fairness), (fairness, accuracy).
    """
    names = info.objective_names
    pairs = [(names[j], names[i]) for i in range(len(names)) for j in range(i + 1, len(names))]
    return sorted(pairs, key=lambda p: (p[0] != info.latency_objective, names.index(p[1])))
