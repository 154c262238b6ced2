"""Pure data shaping: Optuna studies and trials into the frames the pages show.

Nothing here touches Streamlit or the database: functions take ``FrozenStudy`` /
``FrozenTrial`` objects (or frames built from them) and return frames, so they are tested alone.
The user attributes read are those of :mod:`search.attrs` and nothing else.

Rules shared by every page:
    * Objective columns are named after the task's objectives (``accuracy``, ``fairness``,
      ``latency_ms`` for esfair) and hold the trial's Optuna values, in study direction order.
    * A trial that was not trained (over the latency budget, ``trained=False``) has measured
      latency only: its other objective columns are NaN whatever placeholder values it carries.
    * ``feasible`` is the ``feasible`` attribute, else "every ``constraint`` value <= 0", else
      "the trial is COMPLETE" (a study without constraints).
    * ``fake_latency`` is True when the latency record says ``fake``; every view of such a
      figure says FAKE.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from search import attrs
from spaces import Candidate, CandidateError, UnknownSpaceError, get_space

if TYPE_CHECKING:
    from optuna.study._frozen import FrozenStudy

PARAM_PREFIX = "param."
"""Frame columns holding candidate parameters are ``param.<name>``."""
STATES: tuple[str, ...] = tuple(state.name for state in TrialState)
FAKE_LABEL = "FAKE"


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of a study.

    Attributes:
        name: Column name (``accuracy``, ``latency_ms``).
        direction: ``"maximize"`` or ``"minimize"``.
    """

    name: str
    direction: str

    @property
    def minimize(self) -> bool:
        """True for a minimised objective."""
        return self.direction == "minimize"

    @property
    def is_latency(self) -> bool:
        """True for the latency objective (measured even for untrained trials)."""
        return "latency" in self.name.lower()


@dataclass(frozen=True)
class StudyInfo:
    """What the dashboard knows about a study from its attributes.

    Invariant: ``len(objectives)`` equals the study's number of directions, and
    ``objectives[i].direction`` is Optuna's direction ``i``.

    Attributes:
        name: Study name.
        space: ``hwsearch.space`` (``""`` for a study hwsearch did not write).
        device_tag: Target device tag.
        latency_backend: ``local``, ``remote`` or ``fake``.
        data: Description of the data set.
        out_dir: Artifact root of the study.
        objectives: Objectives in Optuna's order.
        latency_budget_ms: Latency budget, when the task has one.
        size_budget_mb: Size budget, when the task has one.
        test_metrics: Test-split Metrics dicts of Pareto trials, by trial number.
    """

    name: str
    space: str
    device_tag: str
    latency_backend: str
    data: str
    out_dir: str
    objectives: tuple[ObjectiveSpec, ...]
    latency_budget_ms: float | None = None
    size_budget_mb: float | None = None
    test_metrics: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def objective_names(self) -> list[str]:
        """Objective column names in Optuna's order."""
        return [o.name for o in self.objectives]

    @property
    def latency_objective(self) -> str | None:
        """Name of the latency objective, if the study has one."""
        return next((o.name for o in self.objectives if o.is_latency), None)


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return dict(loaded) if isinstance(loaded, Mapping) else {}
    return {}


def _objective_names(task: Mapping[str, Any], space: str, count: int) -> list[str]:
    names: list[str] = []
    for entry in task.get("objectives") or []:
        names.append(str(entry.get("name")) if isinstance(entry, Mapping) else str(entry))
    if len(names) == count:
        return names
    if space:
        try:
            registered = get_space(space).task.objective_names
        except UnknownSpaceError:
            registered = []
        if len(registered) == count:
            return list(registered)
    return [f"objective_{i}" for i in range(count)]


def _budget(task: Mapping[str, Any], key: str, space: str) -> float | None:
    if task.get(key) is not None:
        return float(task[key])
    if space and key not in task:
        try:
            value = getattr(get_space(space).task, key)
        except UnknownSpaceError:
            return None
        return float(value) if value is not None else None
    return None


def study_info(study: FrozenStudy) -> StudyInfo:
    """Read a study's ``hwsearch.*`` attributes (see :mod:`search.attrs`).

    ``hwsearch.task`` is a mapping with ``objectives`` (names, or mappings with ``name``) and
    ``latency_budget_ms`` / ``size_budget_mb``. Missing pieces fall back to the registered
    space's task, then to ``objective_<i>`` names and no budget.
    """
    user = dict(study.user_attrs)
    space = str(user.get(attrs.STUDY_SPACE) or "")
    task = _as_mapping(user.get(attrs.STUDY_TASK))
    directions = [d.name.lower() for d in study.directions]
    names = _objective_names(task, space, len(directions))
    test_metrics: dict[int, Mapping[str, Any]] = {}
    for key, value in user.items():
        if key.startswith(attrs.STUDY_TEST_METRICS_PREFIX) and isinstance(value, Mapping):
            suffix = key[len(attrs.STUDY_TEST_METRICS_PREFIX):]
            if suffix.isdigit():
                test_metrics[int(suffix)] = value
    return StudyInfo(
        name=study.study_name,
        space=space,
        device_tag=str(user.get(attrs.STUDY_DEVICE_TAG) or ""),
        latency_backend=str(user.get(attrs.STUDY_LATENCY_BACKEND) or ""),
        data=str(user.get(attrs.STUDY_DATA) or ""),
        out_dir=str(user.get(attrs.STUDY_OUT_DIR) or ""),
        objectives=tuple(ObjectiveSpec(n, d) for n, d in zip(names, directions)),
        latency_budget_ms=_budget(task, "latency_budget_ms", space),
        size_budget_mb=_budget(task, "size_budget_mb", space),
        test_metrics=test_metrics,
    )


def latency_record(trial_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's latency record: ``latency``, else ``metrics.latency``, else ``screen.latency``."""
    for candidate in (
        trial_attrs.get(attrs.LATENCY),
        _as_mapping(trial_attrs.get(attrs.METRICS)).get("latency"),
        _as_mapping(trial_attrs.get(attrs.SCREEN)).get("latency"),
    ):
        if isinstance(candidate, Mapping) and candidate:
            return dict(candidate)
    return {}


def latency_source(record: Mapping[str, Any]) -> str:
    """Where a latency figure comes from, saying FAKE for the fake backend."""
    if not record:
        return ""
    device = record.get("device") or record.get("device_tag") or "unknown device"
    text = f"{device} [{record.get('backend', '?')}, {record.get('threads', '?')} thr]"
    return f"{FAKE_LABEL} latency (not measured): {text}" if record.get("fake") else text


def candidate_params(trial: FrozenTrial) -> dict[str, Any]:
    """The candidate's parameters: the ``candidate`` attribute overlaid with the trial's params."""
    params = _as_mapping(trial.user_attrs.get(attrs.CANDIDATE))
    params.update(trial.params)
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


def _objective_values(trial: FrozenTrial, info: StudyInfo, trained: bool,
                      latency: Mapping[str, Any]) -> dict[str, float]:
    values = list(trial.values) if trial.values is not None else []
    out: dict[str, float] = {}
    for index, objective in enumerate(info.objectives):
        value = float(values[index]) if index < len(values) else math.nan
        if objective.is_latency and math.isnan(value) and "median_ms" in latency:
            value = float(latency["median_ms"])
        if not trained and not objective.is_latency:
            value = math.nan
        out[objective.name] = value
    return out


def _last_activity(trial: FrozenTrial) -> datetime | None:
    return trial.datetime_complete or trial.datetime_start


def trial_row(trial: FrozenTrial, info: StudyInfo) -> dict[str, Any]:
    """One trial as a flat row (see the module docstring for the rules)."""
    user = trial.user_attrs
    latency = latency_record(user)
    metrics = _as_mapping(user.get(attrs.METRICS))
    fairness = _as_mapping(metrics.get("fairness"))
    trained = _trained(trial)
    duration = None
    if trial.datetime_start and trial.datetime_complete:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
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
        "candidate": candidate_text(trial),
        "fake_latency": bool(latency.get("fake", False)),
        "latency_device": str(latency.get("device") or ""),
        "latency_source": latency_source(latency),
        "latency_p90_ms": latency.get("p90_ms", math.nan),
        "spd": fairness.get("spd", math.nan),
        "worst_group_accuracy": fairness.get("worst_group_accuracy", math.nan),
        "esfair_score": metrics.get("esfair_score", math.nan),
        "size_mb": metrics["size_bytes"] / 1e6 if "size_bytes" in metrics else math.nan,
        "artifact_path": str(user.get(attrs.ARTIFACT_PATH) or metrics.get("artifact_path") or ""),
    }
    row.update(_objective_values(trial, info, trained, latency))
    for key, value in candidate_params(trial).items():
        row[PARAM_PREFIX + key] = value
    return row


BASE_COLUMNS: tuple[str, ...] = (
    "number", "state", "datetime_start", "datetime_complete", "last_activity", "duration_s",
    "feasible", "trained", "baseline", "infeasible_reason", "fail_reason", "candidate",
    "fake_latency", "latency_device", "latency_source", "latency_p90_ms", "spd",
    "worst_group_accuracy", "esfair_score", "size_mb", "artifact_path",
)


def trials_frame(trials: Iterable[FrozenTrial], info: StudyInfo) -> pd.DataFrame:
    """All trials of a study, one row each, sorted by trial number.

    Columns: :data:`BASE_COLUMNS`, one per objective, and ``param.<name>`` per parameter. An
    empty study gives an empty frame with the base and objective columns.
    """
    rows = [trial_row(t, info) for t in trials]
    columns = list(BASE_COLUMNS) + info.objective_names
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    for name in info.objective_names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["feasible"] = frame["feasible"].astype(bool)
    frame["trained"] = frame["trained"].astype(bool)
    frame["fake_latency"] = frame["fake_latency"].astype(bool)
    return frame.sort_values("number", kind="stable").reset_index(drop=True)


def param_columns(frame: pd.DataFrame) -> list[str]:
    """Parameter names present in ``frame`` (without the ``param.`` prefix), in column order."""
    return [c[len(PARAM_PREFIX):] for c in frame.columns if c.startswith(PARAM_PREFIX)]


def state_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Number of trials in each Optuna state (every state present, zeros included)."""
    counts = frame["state"].value_counts() if len(frame) else pd.Series(dtype=int)
    return {state: int(counts.get(state, 0)) for state in STATES}


def best_values(frame: pd.DataFrame, info: StudyInfo) -> dict[str, float]:
    """Best value of each objective over COMPLETE, feasible trials (NaN when none)."""
    usable = frame[(frame["state"] == "COMPLETE") & frame["feasible"]]
    out: dict[str, float] = {}
    for objective in info.objectives:
        column = usable[objective.name].dropna()
        if column.empty:
            out[objective.name] = math.nan
        else:
            out[objective.name] = float(column.min() if objective.minimize else column.max())
    return out


def latency_kind(info: StudyInfo, frame: pd.DataFrame) -> str:
    """``FAKE`` when any latency of the study is fake (or the backend is), else the backend."""
    if info.latency_backend == "fake" or bool(frame.get("fake_latency", pd.Series(dtype=bool)).any()):
        return FAKE_LABEL
    return info.latency_backend or "unknown"


def study_summary(info: StudyInfo, frame: pd.DataFrame, pareto_size: int) -> dict[str, Any]:
    """One row of the Studies page.

    Keys: study, space, device, latency (``FAKE`` when computed), one count per state, feasible,
    infeasible (COMPLETE trials only), pareto, ``best <objective>`` per objective, last activity.
    """
    counts = state_counts(frame)
    complete = frame[frame["state"] == "COMPLETE"]
    row: dict[str, Any] = {
        "study": info.name,
        "space": info.space or "(not hwsearch)",
        "device": info.device_tag or "",
        "latency": latency_kind(info, frame),
        "trials": int(len(frame)),
    }
    row.update({state.lower(): counts[state] for state in STATES})
    row["feasible"] = int(complete["feasible"].sum())
    row["infeasible"] = int((~complete["feasible"]).sum())
    row["pareto"] = int(pareto_size)
    for name, value in best_values(frame, info).items():
        row[f"best {name}"] = value
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


def projection_pairs(info: StudyInfo) -> list[tuple[str, str]]:
    """2-D projections ``(x, y)``: every pair of objectives, the later one on x.

    For esfair this is (latency_ms, accuracy), (latency_ms, fairness), (fairness, accuracy).
    """
    names = info.objective_names
    pairs = [(names[j], names[i]) for i in range(len(names)) for j in range(i + 1, len(names))]
    return sorted(pairs, key=lambda p: (p[0] != info.latency_objective, names.index(p[1])))
