"""Text reports of a study: the front table (with intervals, noise marks and held-out test figures)
and the trial summary. Columns come from the task: its objectives, details and scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from search import attrs
from search.front import FrontSpec, dominated_within_noise, front, points_from_trials
from spaces.task import Task, metric_value


@dataclass(frozen=True)
class FrontRow:
    """A member of the Pareto front.

    Attributes:
        trial: The Optuna trial.
        dominated_by: Number of a trial that dominates it within noise (``None``: none does).
    """

    trial: Any
    dominated_by: int | None = None


def front_rows(study: Any, trials: Sequence[Any], task: Task) -> list[FrontRow]:
    """The front of ``trials`` under ``task``, each member marked when it is dominated within noise."""
    spec = FrontSpec.from_task(task)
    points = points_from_trials(trials, spec)
    noise = dominated_within_noise(points, spec)
    by_number = {t.number: t for t in trials}
    return [FrontRow(by_number[p.number], noise.get(p.number)) for p in front(points, spec)]


def _interval(metrics: Mapping[str, Any], path: str) -> str:
    pair = (metrics.get("intervals") or {}).get(path)
    if pair is None and path.startswith("latency."):
        latency = metrics.get("latency") or {}
        if latency.get("ci_low_ms") is not None:
            pair = (latency["ci_low_ms"], latency["ci_high_ms"])
    return "" if not pair else f"±{abs(pair[1] - pair[0]) / 2:.3f}"


def _cell(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_front_table(rows: Sequence[FrontRow], task: Task, test: Mapping[int, Mapping[str, Any]],
                       device_label: str) -> str:
    """Fixed-width table of the front (validation figures with 95 % intervals, test figures)."""
    if not rows:
        return "No feasible candidate finished the top rung yet: no Pareto front to show."
    score = task.primary_score
    split_objectives = [o for o in task.objectives if not o.metric.startswith("latency.")]
    header = ["trial"] + [o.name for o in task.objectives] + [d.label for d in task.details]
    header += ([score] if score else []) + ["MB"] + [f"test {o.name}" for o in split_objectives]
    header += [f"test {score}"] if score else []
    lines: list[list[str]] = []
    for row in rows:
        t = row.trial
        m = t.user_attrs[attrs.METRICS]
        cells = [f"{t.number}{'~' if row.dominated_by is not None else ''}"]
        cells += [f"{_cell(metric_value(m, o.metric))}{_interval(m, o.metric)}" for o in task.objectives]
        cells += [_cell(metric_value(m, d.metric)) for d in task.details]
        cells += [_cell((m.get("scores") or {}).get(score))] if score else []
        cells += [f"{m['size_bytes'] / 1e6:.2f}"]
        record = test.get(t.number) or {}
        cells += [_cell(metric_value(record, o.metric)) for o in split_objectives]
        cells += [_cell((record.get("scores") or {}).get(score))] if score else []
        lines.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    out = [f"Pareto front (validation split; latency on: {device_label}; ± = half-width of the 95 % interval)",
           "  ".join(h.rjust(w) for h, w in zip(header, widths)) + "  candidate"]
    out.append("-" * len(out[-1]))
    for row, cells in zip(rows, lines):
        tag = row.trial.user_attrs.get(attrs.BASELINE)
        note = f"  [baseline: {tag}]" if tag else ""
        if row.trial.user_attrs.get(attrs.START_POINT):
            note += f"  [start point: {row.trial.user_attrs[attrs.START_POINT]}]"
        if row.dominated_by is not None:
            note += f"  [~ dominated within noise by trial {row.dominated_by}]"
        out.append("  ".join(c.rjust(w) for c, w in zip(cells, widths))
                   + f"  {row.trial.user_attrs.get(attrs.CANDIDATE_TEXT, '')}{note}")
    if any(row.trial.user_attrs[attrs.METRICS]["latency"].get("fake") for row in rows):
        out.append("NOTE: latency figures come from the FAKE backend: computed, not measured.")
    if any(row.dominated_by is not None for row in rows):
        out.append("~ : on the front only by differences smaller than the figures' noise; "
                   "search.export --pick ignores it.")
    return "\n".join(out)


def format_lower_rung_front(trials: Sequence[Any], task: Task, rungs: Sequence[int]) -> str:
    """When no candidate finished the top rung: the non-dominated candidates of the highest rung reached.

    They are real, evaluated artifacts (their last rung's ``model.onnx``), exportable by trial
    number, but trained fewer epochs than the plan's top rung; the text says so.
    """
    from search.front import Point, front

    by_rung: dict[int, list[tuple[Any, dict[str, Any]]]] = {}
    for t in trials:
        for rung, record in attrs.rung_records(t.user_attrs).items():
            if record.get("copied_from") is None and record.get("feasible") and record.get("values"):
                by_rung.setdefault(rung, []).append((t, record))
    if not by_rung:
        return ""
    rung = max(by_rung)
    spec = FrontSpec.from_task(task)
    points = [Point(t.number, tuple(record["values"]), True) for t, record in by_rung[rung]]
    members = {p.number for p in front(points, spec)}
    epochs = rungs[rung] if rung < len(rungs) else "?"
    lines = [f"No candidate finished the top rung ({rungs[-1]} epochs) within the budget. The best of rung {rung} "
             f"({epochs} epochs), validation figures (export one with search.export --trial N):"]
    for t, record in sorted(by_rung[rung], key=lambda item: item[0].number):
        if t.number in members:
            figures = "  ".join(f"{o.name} {v:.3f}" for o, v in zip(task.objectives, record["values"]))
            lines.append(f"  trial {t.number}: {figures}  {t.user_attrs.get(attrs.CANDIDATE_TEXT, '')}")
    return "\n".join(lines)


def format_trial_summary(trials: Sequence[Any]) -> str:
    """Counts of trials by outcome."""
    counts: dict[str, int] = {}
    for t in trials:
        if t.state.name == "COMPLETE":
            key = "complete at the top rung" if t.user_attrs.get(attrs.TRAINED) else "screened out (over a budget or too costly)"
        elif t.state.name == "PRUNED":
            key = "stopped at a lower rung"
        else:
            key = t.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    return "Trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
