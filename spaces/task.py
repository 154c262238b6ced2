"""What a space means by "good": objectives, constraints and floors, named scores, and the values
of a candidate that was screened out before training.

Nothing outside ``spaces/`` knows a contest by name: the search, reports, model cards, benches and
the dashboard read objectives, constraints and scores from the :class:`Task` (or from the record
of it that a study stores, :meth:`Task.record`).

Metric paths are dotted keys into ``Metrics.to_dict()`` (``accuracy``, ``fairness.spd``,
``latency.median_ms``, ``scores.esfair``). A screened-out candidate has only the figures known
before training (``latency.*``, ``size_bytes``, ``params``, ``macs``): every objective whose
metric it lacks takes the objective's declared ``worst`` value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

DIRECTIONS = ("maximize", "minimize")


def metric_value(metrics: Mapping[str, Any], path: str) -> float | None:
    """The float at dotted ``path`` in ``metrics``, or ``None`` when a part is missing or null."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            return None
        node = node[part]
    try:
        return float(node)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Objective:
    """One Pareto objective, read from a metrics dictionary.

    Invariants: ``direction`` is ``maximize`` or ``minimize``; ``worst`` is finite for every
    objective that a screened-out candidate cannot know (anything but latency, size, params, MACs).

    Attributes:
        name: Column name shown to users (``accuracy``).
        metric: Dotted metric path (``latency.median_ms``).
        direction: ``"maximize"`` or ``"minimize"`` (Optuna's spelling).
        worst: The value of a candidate that was never trained (screened out).
        best: The best value the objective can take, when it has one (1 for accuracy); with
            ``worst`` or a constraint bound it fixes the objective's scale for hypervolumes.
        needs_groups: The objective is a group-fairness figure (the data must have groups).
    """

    name: str
    metric: str
    direction: str
    worst: float = math.nan
    best: float | None = None
    needs_groups: bool = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")

    @property
    def maximize(self) -> bool:
        """True for a maximised objective."""
        return self.direction == "maximize"

    def value(self, metrics: Mapping[str, Any]) -> float:
        """The objective's value in ``metrics`` (a ``Metrics.to_dict()``).

        Raises:
            KeyError: The metric is missing.
        """
        value = metric_value(metrics, self.metric)
        if value is None:
            raise KeyError(f"objective {self.name!r} needs metric {self.metric!r}, which the metrics lack")
        return value


@dataclass(frozen=True)
class Constraint:
    """A bound on one metric; a trial that violates it is infeasible (Optuna constraint > 0).

    Attributes:
        name: Constraint name as Optuna stores it (``latency_over_budget_ms``).
        metric: Dotted metric path.
        bound: The limit, in the metric's unit times ``scale``.
        sense: ``max`` (value must be <= bound) or ``min`` (value must be >= bound).
        scale: Multiplies the metric before comparing (``1e-6`` turns bytes into MB).
        label: Human text of the limit for messages (``latency budget``).
    """

    name: str
    metric: str
    bound: float
    sense: str = "max"
    scale: float = 1.0
    label: str = ""

    def __post_init__(self) -> None:
        if self.sense not in ("max", "min"):
            raise ValueError(f"constraint {self.name!r}: sense must be 'max' or 'min', got {self.sense!r}")

    def violation(self, metrics: Mapping[str, Any]) -> float | None:
        """How far ``metrics`` are past the bound (> 0 violated, <= 0 met); ``None`` when unknown."""
        value = metric_value(metrics, self.metric)
        if value is None:
            return None
        value *= self.scale
        return value - self.bound if self.sense == "max" else self.bound - value

    def describe(self, metrics: Mapping[str, Any]) -> str:
        """``"latency 7.10 > budget 6"``-style text of a violation."""
        value = metric_value(metrics, self.metric)
        shown = "unknown" if value is None else f"{value * self.scale:.4g}"
        relation = ">" if self.sense == "max" else "<"
        return f"{self.label or self.metric} {shown} {relation} {self.bound:g}"


ScoreFn = Callable[[Mapping[str, Any], "Task"], float]
"""``score(metrics_dict, task) -> float``: a task's named scalar score."""


@dataclass(frozen=True)
class Detail:
    """A figure a report shows beside the objectives (``SPD`` from ``fairness.spd``)."""

    label: str
    metric: str


SCREEN_METRICS = ("latency", "size_bytes", "params", "macs")
"""Top-level metrics a screened-out candidate knows (measured before training)."""


@dataclass(frozen=True)
class Task:
    """The task that comes with a space.

    Invariants: at least one objective, names unique; ``latency_budget_ms`` and ``size_budget_mb``
    are > 0 or ``None``; every floor names an objective; every score name is unique.

    Attributes:
        default_data: Data used when the user passes no ``--data`` (``embedded:<name>``).
        objectives: Pareto objectives, in the order stored in Optuna.
        scores: Named scalar scores stored on every trained trial (``Metrics.scores``); the
            first is the one ``--pick best-score`` uses.
        latency_budget_ms: Median-latency budget on the target device; over it a candidate is
            infeasible and is not trained.
        size_budget_mb: Artifact-size budget; over it a candidate is infeasible.
        floors: Bounds on objectives by name (``{"accuracy": 0.35}``): at least the bound for a
            maximised objective, at most for a minimised one; a trained candidate past a floor
            is infeasible (e.g. a chance-level model, whatever its fairness).
        constraints: More constraints of the space (checked on the screen when their metric is
            known before training, e.g. MACs, else on the trained candidate).
        details: Figures reports show beside the objectives.
        minority_group: The group fairness figures compare with; ``None``: the smallest group.
        default_timeout_s: The space's default wall-clock budget of a search.
        extras: Space-specific settings its score functions read (e.g. a score's weight).
    """

    default_data: str
    objectives: tuple[Objective, ...]
    scores: Mapping[str, ScoreFn] = field(default_factory=dict)
    latency_budget_ms: float | None = None
    size_budget_mb: float | None = None
    floors: Mapping[str, float] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    details: tuple[Detail, ...] = ()
    minority_group: str | None = None
    default_timeout_s: float = 600.0
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [o.name for o in self.objectives]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a task needs one or more objectives with unique names, got {names}")
        for budget in (self.latency_budget_ms, self.size_budget_mb):
            if budget is not None and not (math.isfinite(budget) and budget > 0):
                raise ValueError(f"budgets must be finite and > 0, got {budget}")
        unknown = set(self.floors) - set(names)
        if unknown:
            raise ValueError(f"floors name unknown objectives {sorted(unknown)}; objectives: {names}")

    @property
    def directions(self) -> list[str]:
        """Optuna directions in objective order."""
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        """Objective names in order."""
        return [o.name for o in self.objectives]

    @property
    def needs_groups(self) -> bool:
        """True when an objective is a group-fairness figure."""
        return any(o.needs_groups for o in self.objectives)

    @property
    def primary_score(self) -> str | None:
        """The score ``--pick best-score`` maximises (the first declared), if any."""
        return next(iter(self.scores), None)

    def objective(self, name: str) -> Objective:
        """The objective called ``name``.

        Raises:
            KeyError: Naming the task's objectives.
        """
        for objective in self.objectives:
            if objective.name == name:
                return objective
        raise KeyError(f"no objective {name!r}; objectives: {', '.join(self.objective_names)}")

    def with_settings(
        self, *, latency_budget_ms: float | None = None, size_budget_mb: float | None = None,
        floors: Mapping[str, float] | None = None, minority_group: str | None = None,
    ) -> "Task":
        """This task with the user's budgets, floors and minority group (``None`` keeps the task's)."""
        return dataclasses.replace(
            self,
            latency_budget_ms=self.latency_budget_ms if latency_budget_ms is None else latency_budget_ms,
            size_budget_mb=self.size_budget_mb if size_budget_mb is None else size_budget_mb,
            floors={**self.floors, **(floors or {})},
            minority_group=minority_group or self.minority_group,
        )

    def all_constraints(self) -> tuple[Constraint, ...]:
        """Every constraint in a fixed order: latency budget, size budget, the space's, floors."""
        out = []
        if self.latency_budget_ms is not None:
            out.append(Constraint("latency_over_budget_ms", "latency.median_ms", self.latency_budget_ms,
                                  label="latency (ms) over the budget"))
        if self.size_budget_mb is not None:
            out.append(Constraint("size_over_budget_mb", "size_bytes", self.size_budget_mb, scale=1e-6,
                                  label="size (MB) over the budget"))
        out.extend(self.constraints)
        for name, bound in self.floors.items():
            objective = self.objective(name)
            out.append(Constraint(f"{name}_past_floor", objective.metric, bound,
                                  sense="min" if objective.maximize else "max", label=f"{name} floor"))
        return tuple(out)

    def objective_values(self, metrics: Mapping[str, Any]) -> list[float]:
        """The one place where objective values are derived from a trained candidate's metrics."""
        return [o.value(metrics) for o in self.objectives]

    def screened_out_values(self, screen: Mapping[str, Any]) -> list[float]:
        """Objective values of a candidate screened out before training.

        Objectives whose metric the screen measured (latency, size, params, MACs) keep it; the
        others take the objective's ``worst``.

        Raises:
            ValueError: An objective the screen cannot know has no finite ``worst``.
        """
        values = []
        for objective in self.objectives:
            known = metric_value(screen, objective.metric)
            if known is None:
                if not math.isfinite(objective.worst):
                    raise ValueError(f"objective {objective.name!r} has no finite worst value for a "
                                     "screened-out candidate: declare Objective(worst=...)")
                known = objective.worst
            values.append(known)
        return values

    def constraint_violations(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Optuna constraint values by name (<= 0 feasible) of a trained candidate's metrics."""
        return {c.name: self._violation(c, metrics) for c in self.all_constraints()}

    def screen_violations(self, screen: Mapping[str, Any]) -> dict[str, float]:
        """The constraints a screen can check (their metric is known before training)."""
        out = {}
        for constraint in self.all_constraints():
            violation = constraint.violation(screen)
            if violation is not None:
                out[constraint.name] = violation
        return out

    def screened_out_violations(self, screen: Mapping[str, Any]) -> dict[str, float]:
        """Every constraint of a screened-out candidate; unknown figures take the objectives' worst."""
        values = dict(zip((o.metric for o in self.objectives), self.screened_out_values(screen)))
        return {c.name: self._violation(c, screen, values) for c in self.all_constraints()}

    def violation_reasons(self, metrics: Mapping[str, Any]) -> str:
        """Why ``metrics`` are infeasible (``""`` when feasible), e.g. ``latency (ms) 7.1 > 6``."""
        reasons = [c.describe(metrics) for c in self.all_constraints() if (c.violation(metrics) or 0.0) > 0]
        return "; ".join(reasons)

    def score_values(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Every named score of ``metrics``."""
        return {name: float(fn(metrics, self)) for name, fn in self.scores.items()}

    def record(self) -> dict[str, Any]:
        """JSON-safe description a study stores (``hwsearch.task``) so readers need no code."""
        return {
            "objectives": [
                {"name": o.name, "metric": o.metric, "direction": o.direction,
                 "worst": o.worst if math.isfinite(o.worst) else None, "best": o.best}
                for o in self.objectives
            ],
            "scores": list(self.scores),
            "constraints": [dataclasses.asdict(c) for c in self.all_constraints()],
            "details": [dataclasses.asdict(d) for d in self.details],
            "latency_budget_ms": self.latency_budget_ms,
            "size_budget_mb": self.size_budget_mb,
            "floors": dict(self.floors),
            "minority_group": self.minority_group,
            "needs_groups": self.needs_groups,
        }

    def _violation(self, constraint: Constraint, metrics: Mapping[str, Any],
                   fallback: Mapping[str, float] | None = None) -> float:
        violation = constraint.violation(metrics)
        if violation is None and fallback and constraint.metric in fallback:
            violation = constraint.violation(_nested(constraint.metric, fallback[constraint.metric]))
        return 1.0 if violation is None else violation


def _nested(path: str, value: float) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``path="a.b"``."""
    node: dict[str, Any] = {}
    root = node
    parts = path.split(".")
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return root
