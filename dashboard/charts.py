"""Plotly figure builders (pure: frames in, figures out; no Streamlit, no storage).

Pareto charts draw four kinds of points, in this order: dominated feasible trials in grey,
infeasible (over-budget) trials as red crosses, Pareto trials coloured by the chosen dimension,
then baselines as stars with their recipe name. Untrained infeasible trials have a measured
latency only: in projections with latency on x they sit on a rug under the lowest measured
point of the y objective, and hovering says so; elsewhere they are left out. Latency axes say
FAKE when any plotted figure is computed by the fake backend.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from dashboard.data import PARAM_PREFIX, StudyInfo
from dashboard.pareto import FRONT_DOMINATED, FRONT_INFEASIBLE, FRONT_PARETO

GREY = "#b8b8b8"
INFEASIBLE_RED = "#d62728"
FRONT_COLOUR = "#1f77b4"
PALETTE: tuple[str, ...] = tuple(qualitative.D3) + tuple(qualitative.Set2)
MAX_CATEGORIES = len(PALETTE)
NO_COLOUR = "(none)"
FAKE_AXIS_NOTE = " (FAKE: computed, not measured)"


def axis_title(name: str, info: StudyInfo, fake: bool) -> str:
    """Axis title of objective ``name``; latency says FAKE when ``fake``."""
    return name + (FAKE_AXIS_NOTE if fake and name == info.latency_objective else "")


def budget_line(figure: go.Figure, x: float, text: str, log: bool) -> None:
    """A dashed red vertical line at data ``x`` with a label (annotations take log10 on log axes)."""
    figure.add_vline(x=x, line_dash="dash", line_color=INFEASIBLE_RED)
    figure.add_annotation(x=math.log10(x) if log else x, y=0.98, yref="paper", text=text, showarrow=False,
                          xanchor="left", yanchor="top", font={"color": INFEASIBLE_RED})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def hover_texts(rows: pd.DataFrame, info: StudyInfo) -> list[str]:
    """Hover text per row: trial, candidate, objectives (FAKE latency marked), status."""
    texts = []
    for _, row in rows.iterrows():
        lines = [f"<b>trial {int(row['number'])}</b> ({row.get('front', row['state'])})", str(row["candidate"])]
        for name in info.objective_names:
            fake = " FAKE" if name == info.latency_objective and row.get("fake_latency") else ""
            lines.append(f"{name}: {_fmt(row[name])}{fake}")
        if not row["trained"]:
            reason = f" ({row['infeasible_reason']})" if row["infeasible_reason"] else ""
            lines.append(f"not trained: latency only{reason}")
        if row["baseline"]:
            lines.append(f"baseline: {row['baseline']}")
        texts.append("<br>".join(lines))
    return texts


def ordered_values(column: pd.Series) -> list[str]:
    """Distinct non-null values of ``column`` as text: numeric order when all are numbers."""
    values = column.dropna().unique().tolist()
    try:
        values = sorted(values, key=float)
    except (TypeError, ValueError):
        values = sorted(values, key=str)
    return [str(v) for v in values]


def colour_map(frame: pd.DataFrame, dimension: str) -> dict[str, str] | None:
    """Stable colour per value of parameter ``dimension`` over the whole study.

    Returns None for a numeric dimension with more values than :data:`MAX_CATEGORIES` (drawn
    with a continuous scale instead).
    """
    column = frame.get(PARAM_PREFIX + dimension)
    if column is None:
        return {}
    keys = ordered_values(column)
    if len(keys) > MAX_CATEGORIES and pd.to_numeric(pd.Series(keys), errors="coerce").notna().all():
        return None
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def _rug(frame: pd.DataFrame, y: str) -> float:
    finite = frame[y].dropna()
    if finite.empty:
        return 0.0
    low, high = float(finite.min()), float(finite.max())
    return low - 0.05 * ((high - low) or max(abs(low), 1.0))


def _coords(rows: pd.DataFrame, axes: Sequence[str]) -> dict[str, np.ndarray]:
    return {axis: rows[name].to_numpy(dtype=float) for axis, name in zip(("x", "y", "z"), axes)}


def _scatter(three_d: bool, rows: pd.DataFrame, axes: Sequence[str], info: StudyInfo, **kwargs: Any):
    trace_type = go.Scatter3d if three_d else go.Scatter
    return trace_type(
        mode=kwargs.pop("mode", "markers"), hovertext=hover_texts(rows, info), hoverinfo="text",
        customdata=rows["number"].to_numpy(), **_coords(rows, axes), **kwargs,
    )


def _front_traces(front: pd.DataFrame, frame: pd.DataFrame, axes: Sequence[str], info: StudyInfo,
                  colour_by: str, three_d: bool) -> list[Any]:
    size = 6 if three_d else 11
    line = {"color": "#222222", "width": 1}
    if colour_by == NO_COLOUR or PARAM_PREFIX + colour_by not in frame.columns:
        return [_scatter(three_d, front, axes, info, name=FRONT_PARETO,
                         marker={"color": FRONT_COLOUR, "size": size, "line": line})]
    column = PARAM_PREFIX + colour_by
    colours = colour_map(frame, colour_by)
    if colours is None:
        values = pd.to_numeric(frame[column], errors="coerce")
        low, high = float(values.min()), float(values.max())
        scaled = (pd.to_numeric(front[column], errors="coerce") - low) / ((high - low) or 1.0)
        marker = {"color": sample_colorscale("Viridis", scaled.fillna(0).tolist()), "size": size, "line": line}
        return [_scatter(three_d, front, axes, info, name=f"{FRONT_PARETO} ({colour_by}: low→high)",
                         marker=marker)]
    traces = []
    for value, colour in colours.items():
        rows = front[front[column].astype(str) == value]
        if len(rows):
            traces.append(_scatter(three_d, rows, axes, info, name=f"{FRONT_PARETO}: {colour_by}={value}",
                                   marker={"color": colour, "size": size, "line": line}))
    return traces


def pareto_figure(frame: pd.DataFrame, info: StudyInfo, axes: Sequence[str], colour_by: str = NO_COLOUR,
                  show_dominated: bool = True, show_infeasible: bool = True, log_latency: bool = True,
                  uirevision: str = "") -> go.Figure:
    """A 2-D (two axes) or 3-D (three axes) Pareto chart of a frame with a ``front`` column.

    Args:
        frame: Output of :func:`dashboard.pareto.with_front`.
        info: The study.
        axes: Objective names for x, y (and z).
        colour_by: Parameter name colouring the Pareto points, or :data:`NO_COLOUR`.
        show_dominated: Draw dominated feasible trials (grey).
        show_infeasible: Draw infeasible trials (red crosses).
        log_latency: Logarithmic latency axis.
        uirevision: Keeps zoom and camera across refreshes while it stays the same.
    """
    three_d = len(axes) == 3
    fake = bool(frame.loc[frame["state"] == "COMPLETE", "fake_latency"].any()) if len(frame) else False
    traces: list[Any] = []
    if show_dominated:
        rows = frame[frame["front"] == FRONT_DOMINATED]
        traces.append(_scatter(three_d, rows, axes, info, name=FRONT_DOMINATED,
                               marker={"color": GREY, "size": 4 if three_d else 8, "opacity": 0.6}))
    if show_infeasible:
        rows = frame[frame["front"] == FRONT_INFEASIBLE].copy()
        latency_x = not three_d and axes[0] == info.latency_objective
        if latency_x:
            rows[axes[1]] = rows[axes[1]].fillna(_rug(frame[frame["front"] != FRONT_INFEASIBLE], axes[1]))
        traces.append(_scatter(three_d, rows, axes, info, name=FRONT_INFEASIBLE,
                               marker={"color": INFEASIBLE_RED, "symbol": "x", "size": 4 if three_d else 9}))
    front = frame[frame["front"] == FRONT_PARETO]
    traces.extend(_front_traces(front, frame, axes, info, colour_by, three_d))
    baselines = frame[(frame["baseline"] != "") & frame["front"].isin([FRONT_PARETO, FRONT_DOMINATED])]
    for name, rows in baselines.groupby("baseline", sort=True):
        traces.append(_scatter(
            three_d, rows, axes, info, name=f"baseline: {name}",
            marker={"symbol": "diamond-open" if three_d else "star-open", "size": 9 if three_d else 18,
                    "color": "#111111", "line": {"width": 2}},
        ))
    figure = go.Figure(traces)
    names = ("xaxis", "yaxis", "zaxis")
    layout = {
        name: {"title": {"text": axis_title(a, info, fake)},
               "type": "log" if log_latency and a == info.latency_objective else "linear"}
        for name, a in zip(names, axes)
    }
    if three_d:
        figure.update_layout(scene=layout, height=560)
    else:
        figure.update_layout(height=460, **layout)
        if axes[0] == info.latency_objective and info.latency_budget_ms:
            budget_line(figure, info.latency_budget_ms, "latency budget", log=log_latency)
    figure.update_layout(legend={"orientation": "h", "y": -0.2}, margin={"t": 30}, uirevision=uirevision or None)
    return figure


def hypervolume_figure(history: pd.DataFrame, uirevision: str = "") -> go.Figure:
    """Hypervolume fraction against trial number (a step line)."""
    figure = go.Figure(go.Scatter(x=history["number"], y=history["hypervolume"], mode="lines+markers",
                                  line={"shape": "hv"}, name="hypervolume"))
    figure.update_layout(xaxis_title="trial", yaxis_title="hypervolume (fraction of reference box)",
                         yaxis_range=[0, 1], height=320, margin={"t": 30}, uirevision=uirevision or None)
    return figure


def group_accuracy_figure(groups: pd.DataFrame) -> go.Figure:
    """Per-group accuracy bars; the minority group is red and labelled."""
    colours = [INFEASIBLE_RED if m else FRONT_COLOUR for m in groups["minority"]]
    labels = [f"{g} (minority)" if m else str(g) for g, m in zip(groups["group"], groups["minority"])]
    figure = go.Figure(go.Bar(
        x=labels, y=groups["accuracy"], marker_color=colours, name="accuracy",
        text=[f"{a:.3f} (n={n})" for a, n in zip(groups["accuracy"], groups["samples"])],
    ))
    figure.update_layout(yaxis_title="accuracy", yaxis_range=[0, 1], height=340, margin={"t": 30})
    return figure


def confusion_figure(matrix: pd.DataFrame) -> go.Figure:
    """Confusion-matrix heatmap with counts written in the cells."""
    figure = go.Figure(go.Heatmap(
        z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), colorscale="Blues",
        text=matrix.to_numpy(), texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
    ))
    figure.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                         height=360, margin={"t": 30})
    return figure


def latency_figure(stats: pd.DataFrame, std_ms: float | None, title: str, budget_ms: float | None) -> go.Figure:
    """Latency summary on one axis: min, median, mean (± std) and p90 marks, and the budget."""
    figure = go.Figure()
    for _, row in stats.iterrows():
        error = {"type": "data", "array": [std_ms]} if row["stat"] == "mean" and std_ms else None
        figure.add_trace(go.Scatter(x=[row["ms"]], y=[row["stat"]], mode="markers", name=row["stat"],
                                    marker={"size": 13}, error_x=error))
    if budget_ms:
        budget_line(figure, budget_ms, "budget", log=False)
    figure.update_layout(xaxis_title=title, height=260, showlegend=False, margin={"t": 30})
    return figure


def stage_figure(stages: pd.DataFrame) -> go.Figure:
    """Wall-clock seconds per pipeline stage (horizontal bars, stored order top to bottom)."""
    figure = go.Figure(go.Bar(
        x=stages["seconds"], y=stages["stage"], orientation="h",
        text=[f"{s:.1f} s ({p:.0%})" for s, p in zip(stages["seconds"], stages["share"])],
    ))
    figure.update_layout(xaxis_title="seconds", yaxis_autorange="reversed", height=80 + 32 * len(stages),
                         margin={"t": 30})
    return figure


def importance_figure(table: pd.DataFrame, objective: str) -> go.Figure:
    """Parameter importances for one objective, most important on top."""
    figure = go.Figure(go.Bar(x=table["importance"], y=table["param"], orientation="h", name=objective))
    figure.update_layout(title=objective, xaxis_title="importance", yaxis_autorange="reversed",
                         height=80 + 26 * len(table), margin={"t": 40})
    return figure


def effect_figure(frame: pd.DataFrame, dimension: str, metric: str, info: StudyInfo, fake: bool,
                  log_latency: bool = True) -> go.Figure:
    """Box plot of ``metric`` per value of ``dimension`` (COMPLETE trials with a known metric).

    The latency objective gets a logarithmic axis when ``log_latency``.
    """
    column = PARAM_PREFIX + dimension
    rows = frame[(frame["state"] == "COMPLETE") & frame[metric].notna() & frame[column].notna()]
    order = ordered_values(rows[column])
    figure = go.Figure()
    for value in order:
        subset = rows[rows[column].astype(str) == value]
        figure.add_trace(go.Box(y=subset[metric], name=value, boxpoints="all", jitter=0.4,
                                pointpos=0, hovertext=hover_texts(subset, info), hoverinfo="text+y"))
    log = log_latency and metric == info.latency_objective
    figure.update_layout(xaxis_title=dimension, yaxis_title=axis_title(metric, info, fake), showlegend=False,
                         yaxis_type="log" if log else "linear", height=340, margin={"t": 30})
    return figure
