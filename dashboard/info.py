"""What a study says about itself: its task record, fidelity ladder, budget and test figures (pure).

The study's task owns its figures: objectives, scores, details, constraints and floors come from
``hwsearch.task`` (``Task.record()``, see :mod:`search.attrs`). A study written before a key
existed gets that key from its registered space's task with the budgets, floors and minority
group the study recorded (as ``search.export`` does), so old and new studies read alike. A study
hwsearch did not write gets ``objective_<i>`` names and no scores.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from search import attrs
from search.front import FrontSpec
from spaces import UnknownSpaceError, get_space

if TYPE_CHECKING:
    from optuna.study._frozen import FrozenStudy

_PLAN_BUDGET = re.compile(r"of an? ([0-9]+(?:\.[0-9]+)?) s budget")


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective of a study.

    Attributes:
        name: Column name (``accuracy``, ``latency_ms``).
        direction: ``"maximize"`` or ``"minimize"``.
        metric: Dotted metric path in ``Metrics.to_dict()`` (``""`` when unknown).
    """

    name: str
    direction: str
    metric: str = ""

    @property
    def minimize(self) -> bool:
        """True for a minimised objective."""
        return self.direction == "minimize"

    @property
    def is_latency(self) -> bool:
        """True for the latency objective (measured even for untrained trials)."""
        if self.metric:
            return self.metric.startswith("latency.")
        return "latency" in self.name.lower()


@dataclass(frozen=True)
class FigureSpec:
    """A figure the task shows beside its objectives (``SPD`` from ``fairness.spd``)."""

    label: str
    metric: str


@dataclass(frozen=True)
class StudyInfo:
    """What the dashboard knows about a study from its attributes.

    Invariants: ``len(objectives)`` equals the study's number of directions and
    ``objectives[i].direction`` is Optuna's direction ``i``; ``spec`` is
    ``FrontSpec.from_record(task)`` (the front every hwsearch reader computes).

    Attributes:
        name: Study name.
        space: ``hwsearch.space`` (``""`` for a study hwsearch did not write).
        device_tag: Target device tag.
        latency_backend: ``local``, ``remote`` or ``fake``.
        data: Description of the data set.
        out_dir: Artifact root of the study.
        objectives: Objectives in Optuna's order.
        spec: How fronts, noise and hypervolume compare and scale the objectives.
        task: The task record (stored, completed from the registered space where keys are missing).
        scores: Names of the task's scores, the first being the one ``--pick best-score`` uses.
        details: Figures shown beside the objectives.
        latency_budget_ms: Latency budget, when the task has one.
        size_budget_mb: Size budget, when the task has one.
        floors: Floors on objectives by name.
        needs_groups: The task optimises group fairness (its data has groups).
        rungs: Training epochs of each fidelity rung (empty for studies without rungs).
        eta: Successive-halving factor, when known.
        first_look: Share of an epoch the first rungs trained (1 unless a first look, ``hwsearch.first_look``).
        spent_s: Seconds of the study's budget spent so far, when known.
        stored_budget_s: The study's budget as the launcher stored it (``hwsearch.budget_s``).
        plan: The last run's plan, in words.
        test_metrics: Test-split Metrics dicts of Pareto trials, by trial number.
    """

    name: str
    space: str
    device_tag: str
    latency_backend: str
    data: str
    out_dir: str
    objectives: tuple[ObjectiveSpec, ...]
    spec: FrontSpec
    task: Mapping[str, Any] = field(default_factory=dict)
    scores: tuple[str, ...] = ()
    details: tuple[FigureSpec, ...] = ()
    latency_budget_ms: float | None = None
    size_budget_mb: float | None = None
    floors: Mapping[str, float] = field(default_factory=dict)
    needs_groups: bool = False
    rungs: tuple[int, ...] = ()
    eta: int | None = None
    first_look: float = 1.0
    spent_s: float | None = None
    stored_budget_s: float | None = None
    plan: str = ""
    test_metrics: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def objective_names(self) -> list[str]:
        """Objective column names in Optuna's order."""
        return [o.name for o in self.objectives]

    @property
    def latency_objective(self) -> str | None:
        """Name of the latency objective, if the study has one."""
        return next((o.name for o in self.objectives if o.is_latency), None)

    @property
    def primary_score(self) -> str | None:
        """The score ``search.export --pick best-score`` maximises, if the task names one."""
        return self.scores[0] if self.scores else None

    @property
    def budget_s(self) -> float | None:
        """The study's wall-clock budget: as stored, else as its last plan states it (``None``: unknown)."""
        if self.stored_budget_s is not None:
            return self.stored_budget_s
        match = _PLAN_BUDGET.search(self.plan)
        return float(match.group(1)) if match else None


def as_mapping(value: Any) -> dict[str, Any]:
    """``value`` as a dict: a mapping as is, a JSON object text parsed, anything else empty."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return dict(loaded) if isinstance(loaded, Mapping) else {}
    return {}


def _registered_record(space: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The registered space's task record with the settings the study stored (empty when unknown)."""
    if not space:
        return {}
    try:
        task = get_space(space).task
    except UnknownSpaceError:
        return {}
    return task.with_settings(
        latency_budget_ms=stored.get("latency_budget_ms"), size_budget_mb=stored.get("size_budget_mb"),
        floors=stored.get("floors") or {}, minority_group=stored.get("minority_group"),
    ).record()


def task_record(user_attrs: Mapping[str, Any], directions: list[str]) -> dict[str, Any]:
    """The study's task record, completed from its registered space where keys are missing.

    Objectives are merged by name (stored fields win); when their number differs from the
    study's directions, ``objective_<i>`` objectives replace them.
    """
    space = str(user_attrs.get(attrs.STUDY_SPACE) or "")
    stored = as_mapping(user_attrs.get(attrs.STUDY_TASK))
    registered = _registered_record(space, stored)
    record = {**registered, **stored}
    known = {o["name"]: o for o in registered.get("objectives") or []}
    objectives = []
    for entry in stored.get("objectives") or registered.get("objectives") or []:
        entry = {"name": str(entry)} if not isinstance(entry, Mapping) else dict(entry)
        objectives.append({**known.get(str(entry.get("name")), {}), **entry})
    if len(objectives) != len(directions):
        objectives = [{"name": f"objective_{i}"} for i in range(len(directions))]
    for objective, direction in zip(objectives, directions):
        objective["direction"] = direction
        objective.setdefault("metric", objective["name"])
    record["objectives"] = objectives
    return record


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _test_metrics(user_attrs: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for key, value in user_attrs.items():
        suffix = key[len(attrs.STUDY_TEST_METRICS_PREFIX):]
        if key.startswith(attrs.STUDY_TEST_METRICS_PREFIX) and suffix.isdigit() and isinstance(value, Mapping):
            out[int(suffix)] = value
    return out


def study_info(study: FrozenStudy) -> StudyInfo:
    """Read a study's ``hwsearch.*`` attributes (see :mod:`search.attrs` and the module docstring)."""
    user = dict(study.user_attrs)
    directions = [d.name.lower() for d in study.directions]
    record = task_record(user, directions)
    objectives = tuple(ObjectiveSpec(str(o["name"]), o["direction"], str(o.get("metric") or ""))
                       for o in record["objectives"])
    details = tuple(FigureSpec(str(d["label"]), str(d["metric"])) for d in record.get("details") or []
                    if isinstance(d, Mapping) and d.get("label") and d.get("metric"))
    eta = _float(user.get(attrs.STUDY_ETA))
    return StudyInfo(
        name=study.study_name,
        space=str(user.get(attrs.STUDY_SPACE) or ""),
        device_tag=str(user.get(attrs.STUDY_DEVICE_TAG) or ""),
        latency_backend=str(user.get(attrs.STUDY_LATENCY_BACKEND) or ""),
        data=str(user.get(attrs.STUDY_DATA) or ""),
        out_dir=str(user.get(attrs.STUDY_OUT_DIR) or ""),
        objectives=objectives,
        spec=FrontSpec.from_record(record),
        task=record,
        scores=tuple(str(s) for s in record.get("scores") or []),
        details=details,
        latency_budget_ms=_float(record.get("latency_budget_ms")),
        size_budget_mb=_float(record.get("size_budget_mb")),
        floors={str(k): float(v) for k, v in (record.get("floors") or {}).items()},
        needs_groups=bool(record.get("needs_groups")),
        rungs=tuple(int(e) for e in user.get(attrs.STUDY_RUNGS) or ()),
        eta=int(eta) if eta is not None else None,
        first_look=_float(user.get(attrs.STUDY_FIRST_LOOK)) or 1.0,
        spent_s=_float(user.get(attrs.STUDY_SPENT_S)),
        stored_budget_s=_float(user.get(attrs.STUDY_BUDGET_S)),
        plan=str(user.get(attrs.STUDY_PLAN) or ""),
        test_metrics=_test_metrics(user),
    )
