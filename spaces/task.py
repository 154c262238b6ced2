"""What a space optimises: objectives, directions, constraints and its scalar score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Objective:
    """One Pareto objective, read from a metrics dictionary.

    Attributes:
        name: Column name shown to users (``accuracy``).
        metric: Dotted key into ``Metrics.to_dict()`` (``latency.median_ms``).
        direction: ``"maximize"`` or ``"minimize"`` (Optuna's spelling).
    """

    name: str
    metric: str
    direction: str

    def value(self, metrics: Mapping[str, Any]) -> float:
        """The objective's value in ``metrics`` (a ``Metrics.to_dict()``)."""
        node: Any = metrics
        for part in self.metric.split("."):
            node = node[part]
        return float(node)


@dataclass(frozen=True)
class Task:
    """The task that comes with a space.

    Invariants: at least one objective; ``latency_budget_ms`` > 0 or ``None`` (no budget).

    Attributes:
        default_data: Data used when the user passes no ``--data`` (``"embedded:esfair"`` is the
            generated dermatology-like set).
        objectives: Pareto objectives, in the order stored in Optuna.
        latency_budget_ms: Median-latency budget on the target device; over it a trial is
            infeasible (Optuna constraint) and is not trained.
        size_budget_mb: Artifact-size budget; over it a trial is infeasible.
        score: Scalar score ``score(metrics_dict, task) -> float`` used by ``--pick best-score``.
        minority_group: Group used by ESFair's SPD; ``None`` picks the smallest training group.
        latency_score_weight: Weight of the latency part of the ESFair score.
    """

    default_data: str
    objectives: tuple[Objective, ...]
    score: Callable[[Mapping[str, Any], "Task"], float]
    latency_budget_ms: float | None = None
    size_budget_mb: float | None = None
    minority_group: str | None = None
    latency_score_weight: float = 1.0 / 3.0
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def directions(self) -> list[str]:
        """Optuna directions in objective order."""
        return [o.direction for o in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        """Objective names in order."""
        return [o.name for o in self.objectives]

    def objective_values(self, metrics: Mapping[str, Any]) -> list[float]:
        """The one place where objective values are derived from metrics."""
        return [o.value(metrics) for o in self.objectives]

    def constraint_violations(self, metrics: Mapping[str, Any]) -> list[float]:
        """Optuna constraint values (<= 0 feasible): latency and size over budget."""
        latency = float(metrics["latency"]["median_ms"])
        size_mb = float(metrics.get("size_bytes", 0)) / 1e6
        out = [latency - self.latency_budget_ms if self.latency_budget_ms else -1.0]
        out.append(size_mb - self.size_budget_mb if self.size_budget_mb else -1.0)
        return out
