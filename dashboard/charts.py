"""Plotly figures of the Pareto and Insight pages (pure: frames in, figures out; no Streamlit, no storage).

Pareto charts draw, in this order: dominated feasible trials in grey; trials stopped at a lower
rung as faint open circles at their last rung's figures (coloured by rung when the chart is
coloured by fidelity); infeasible trials (screened out, over a budget, under a floor) as red
crosses; the front coloured by the chosen dimension; a black ring around each front member that
is dominated within noise (hover says by which trial); baselines as stars. Screened-out trials
have a measured latency only: in projections with latency on x they sit on a rug under the
lowest point of the y objective, and hovering says so; elsewhere they are left out. Latency axes
say FAKE (or EMULATED, PREDICTED) when a plotted figure is not a measurement on the device.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from dashboard.data import PARAM_PREFIX, SOURCE_LABELS, half_width_column
from dashboard.fidelity import stopped_text
from dashboard.info import StudyInfo
from dashboard.pareto import FRONT_DOMINATED, FRONT_INFEASIBLE, FRONT_MEMBERS, FRONT_NOISE, FRONT_PARETO, FRONT_STOPPED

GREY = "#b8b8b8"
STOPPED_GREY = "#d9d9d9"
INFEASIBLE_RED = "#d62728"
FRONT_COLOUR = "#1f77b4"
PALETTE: tuple[str, ...] = tuple(qualitative.D3) + tuple(qualitative.Set2)
MAX_CATEGORIES = len(PALETTE)
NO_COLOUR = "(none)"
FIDELITY_DIMENSIONS: tuple[str, ...] = ("rung", "epochs")
"""Frame columns the front (and stopped trials) can be coloured by besides the parameters."""
NOISE_RING = "dominated within noise"
LATENCY_NOTES: dict[str, str] = {
    "fake": " (FAKE: computed, not measured)",
    "emulated": " (EMULATED: not the device's speed)",
    "predicted": " (PREDICTED: not measured)",
}
FAKE_AXIS_NOTE = LATENCY_NOTES["fake"]


def latency_note(frame: pd.DataFrame) -> str:
    """The axis note of the latency figures in ``frame`` (``""`` when all are measured)."""
    sources = set(frame["latency_source"]) if len(frame) else set()
    return next((LATENCY_NOTES[s] for s in SOURCE_LABELS if s in sources), "")


def axis_title(name: str, info: StudyInfo, note: str) -> str:
    """Axis title of ``name``; the latency objective carries ``note`` (:func:`latency_note`)."""
    return name + (note if name == info.latency_objective else "")


def budget_line(figure: go.Figure, x: float, text: str, log: bool) -> None:
    """A dashed red vertical line at data ``x`` with a label (annotations take log10 on log axes)."""
    figure.add_vline(x=x, line_dash="dash", line_color=INFEASIBLE_RED)
    figure.add_annotation(x=math.log10(x) if log else x, y=0.98, yref="paper", text=text, showarrow=False,
                          xanchor="left", yanchor="top", font={"color": INFEASIBLE_RED})


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _objective_line(row: pd.Series, name: str, info: StudyInfo) -> str:
    half = row.get(half_width_column(name), math.nan)
    interval = f" ± {half:.2g}" if isinstance(half, float) and not math.isnan(half) else ""
    label = SOURCE_LABELS.get(row.get("latency_source", ""), "") if name == info.latency_objective else ""
    load = " under load" if name == info.latency_objective and row.get("under_load") else ""
    return f"{name}: {_fmt(row[name])}{interval}{' ' + label if label else ''}{load}"


def hover_texts(rows: pd.DataFrame, info: StudyInfo) -> list[str]:
    """Hover text per row: trial, candidate, objectives with ± (non-measured latency marked), status."""
    texts = []
    for _, row in rows.iterrows():
        lines = [f"<b>trial {int(row['number'])}</b> ({row.get('front', row['state'])})", str(row["candidate"])]
        lines += [_objective_line(row, name, info) for name in info.objective_names]
        if not pd.isna(row.get("epochs", math.nan)):
            lines.append(f"figures after {row['epochs']:.3g} epochs")
        if row["state"] == "PRUNED":
            lines.append(stopped_text(row, info))
        if not pd.isna(row.get("dominated_by", pd.NA)):
            lines.append(f"dominated within noise by trial {int(row['dominated_by'])}")
        if not row["trained"]:
            reason = f" ({row['infeasible_reason']})" if row["infeasible_reason"] else ""
            lines.append(f"not trained: latency only{reason}")
        elif row.get("front") == FRONT_INFEASIBLE and row["infeasible_reason"]:
            lines.append(f"infeasible: {row['infeasible_reason']}")
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
    return [_label(v) for v in values]


def _label(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def colour_column(frame: pd.DataFrame, dimension: str) -> str | None:
    """Frame column of colour dimension ``dimension``: a fidelity column (the epochs behind the figures,
    not the candidate's ``epochs`` parameter), else a parameter, else None."""
    if dimension in FIDELITY_DIMENSIONS and dimension in frame.columns:
        return dimension
    return PARAM_PREFIX + dimension if PARAM_PREFIX + dimension in frame.columns else None


def colour_map(frame: pd.DataFrame, dimension: str) -> dict[str, str] | None:
    """Stable colour per value of ``dimension`` (a parameter or fidelity column) over the whole study.

    Returns None for a numeric dimension with more values than :data:`MAX_CATEGORIES` (drawn
    with a continuous scale instead), ``{}`` for an unknown dimension.
    """
    column = colour_column(frame, dimension)
    if column is None:
        return {}
    keys = ordered_values(frame[column])
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


def _scatter(three_d: bool, rows: pd.DataFrame, axes: Sequence[str], info: StudyInfo, **kwargs: Any) -> Any:
    trace_type = go.Scatter3d if three_d else go.Scatter
    return trace_type(
        mode=kwargs.pop("mode", "markers"), hovertext=hover_texts(rows, info), hoverinfo="text",
        customdata=rows["number"].to_numpy(), **_coords(rows, axes), **kwargs,
    )


def _coloured(rows: pd.DataFrame, frame: pd.DataFrame, axes: Sequence[str], info: StudyInfo, colour_by: str,
              three_d: bool, name: str, marker: dict[str, Any]) -> list[Any]:
    """Traces of ``rows`` coloured by ``colour_by`` (one per value, or one on a continuous scale)."""
    column = colour_column(frame, colour_by) if colour_by != NO_COLOUR else None
    if column is None:
        return [_scatter(three_d, rows, axes, info, name=name, marker={"color": FRONT_COLOUR, **marker})]
    colours = colour_map(frame, colour_by)
    if colours is None:
        values = pd.to_numeric(frame[column], errors="coerce")
        low, high = float(values.min()), float(values.max())
        scaled = (pd.to_numeric(rows[column], errors="coerce") - low) / ((high - low) or 1.0)
        return [_scatter(three_d, rows, axes, info, name=f"{name} ({colour_by}: low→high)",
                         marker={**marker, "color": sample_colorscale("Viridis", scaled.fillna(0).tolist())})]
    traces = []
    labels = rows[column].map(_label)
    for value, colour in colours.items():
        subset = rows[labels == value]
        if len(subset):
            traces.append(_scatter(three_d, subset, axes, info, name=f"{name}: {colour_by}={value}",
                                   marker={**marker, "color": colour}))
    return traces


def _stopped_traces(frame: pd.DataFrame, axes: Sequence[str], info: StudyInfo, colour_by: str,
                    three_d: bool) -> list[Any]:
    rows = frame[(frame["front"] == FRONT_STOPPED)].dropna(subset=list(axes))
    marker = {"size": 4 if three_d else 8, "opacity": 0.55, "symbol": "circle-open"}
    if colour_by in FIDELITY_DIMENSIONS:
        return _coloured(rows, frame, axes, info, colour_by, three_d, FRONT_STOPPED, marker)
    return [_scatter(three_d, rows, axes, info, name=FRONT_STOPPED, marker={**marker, "color": GREY})]


def pareto_figure(frame: pd.DataFrame, info: StudyInfo, axes: Sequence[str], colour_by: str = NO_COLOUR,
                  show_dominated: bool = True, show_infeasible: bool = True, log_latency: bool = True,
                  uirevision: str = "", show_stopped: bool = True) -> go.Figure:
    """A 2-D (two axes) or 3-D (three axes) Pareto chart of a frame with ``front`` marks.

    Args:
        frame: Output of :func:`dashboard.pareto.with_front`.
        info: The study.
        axes: Objective names for x, y (and z).
        colour_by: Parameter or fidelity column colouring the front, or :data:`NO_COLOUR`.
        show_dominated: Draw dominated feasible trials (grey).
        show_infeasible: Draw infeasible trials (red crosses).
        log_latency: Logarithmic latency axis.
        uirevision: Keeps zoom and camera across refreshes while it stays the same.
        show_stopped: Draw trials stopped at a lower rung (faint, at their last rung's figures).
    """
    three_d = len(axes) == 3
    note = latency_note(frame[frame["state"].isin(["COMPLETE", "PRUNED"])]) if len(frame) else ""
    traces: list[Any] = []
    if show_dominated:
        rows = frame[frame["front"] == FRONT_DOMINATED]
        traces.append(_scatter(three_d, rows, axes, info, name=FRONT_DOMINATED,
                               marker={"color": GREY, "size": 4 if three_d else 8, "opacity": 0.6}))
    if show_stopped:
        traces.extend(_stopped_traces(frame, axes, info, colour_by, three_d))
    if show_infeasible:
        rows = frame[frame["front"] == FRONT_INFEASIBLE].copy()
        if not three_d and axes[0] == info.latency_objective:
            rows[axes[1]] = rows[axes[1]].fillna(_rug(frame, axes[1]))
        traces.append(_scatter(three_d, rows, axes, info, name=FRONT_INFEASIBLE,
                               marker={"color": INFEASIBLE_RED, "symbol": "x", "size": 4 if three_d else 9}))
    members = frame[frame["front"].isin(FRONT_MEMBERS)]
    line = {"color": "#222222", "width": 1}
    traces.extend(_coloured(members, frame, axes, info, colour_by, three_d, FRONT_PARETO,
                            {"size": 6 if three_d else 11, "line": line}))
    noisy = frame[frame["front"] == FRONT_NOISE]
    if len(noisy):
        traces.append(_scatter(three_d, noisy, axes, info, name=f"{NOISE_RING} (hover: by which trial)",
                               marker={"symbol": "circle-open", "size": 10 if three_d else 20,
                                       "color": "#111111", "line": {"width": 2}}))
    baselines = frame[(frame["baseline"] != "") & frame["front"].isin([*FRONT_MEMBERS, FRONT_DOMINATED])]
    for name, rows in baselines.groupby("baseline", sort=True):
        traces.append(_scatter(
            three_d, rows, axes, info, name=f"baseline: {name}",
            marker={"symbol": "diamond-open" if three_d else "star-open", "size": 9 if three_d else 18,
                    "color": "#111111", "line": {"width": 2}},
        ))
    figure = go.Figure(traces)
    layout = {
        name: {"title": {"text": axis_title(a, info, note)},
               "type": "log" if log_latency and a == info.latency_objective else "linear"}
        for name, a in zip(("xaxis", "yaxis", "zaxis"), axes)
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


def occupancy_figure(occupancy: pd.DataFrame, outcomes: Sequence[str]) -> go.Figure:
    """Candidates per rung, stacked by what followed (one bar per rung, labelled with its epochs)."""
    labels = [f"rung {int(r)} ({e:.3g} ep)" if isinstance(e, (int, float)) else f"rung {int(r)} ({e} ep)"
              for r, e in zip(occupancy["rung"], occupancy["epochs"])]
    figure = go.Figure([go.Bar(x=labels, y=occupancy[o], name=o, marker_color=PALETTE[i])
                        for i, o in enumerate(outcomes)])
    figure.update_layout(barmode="stack", yaxis_title="candidates", height=320, margin={"t": 30},
                         legend={"orientation": "h", "y": -0.25})
    return figure


def importance_figure(table: pd.DataFrame, objective: str) -> go.Figure:
    """Parameter importances for one objective, most important on top."""
    figure = go.Figure(go.Bar(x=table["importance"], y=table["param"], orientation="h", name=objective))
    figure.update_layout(title=objective, xaxis_title="importance", yaxis_autorange="reversed",
                         height=80 + 26 * len(table), margin={"t": 40})
    return figure


def effect_figure(frame: pd.DataFrame, dimension: str, metric: str, info: StudyInfo, note: str,
                  log_latency: bool = True, rows: pd.DataFrame | None = None, column: str | None = None,
                  order: Sequence[str] = ()) -> go.Figure:
    """Box plot of ``metric`` per value of parameter ``dimension``.

    Args:
        note: Latency axis note (:func:`latency_note`).
        rows: The trials to draw (default: COMPLETE trials with a known metric and dimension).
        column: Frame column holding the dimension (default: ``param.<dimension>``).
        order: Values in the order to draw them (default: :func:`ordered_values`).
    """
    column = column or PARAM_PREFIX + dimension
    if rows is None:
        rows = frame[(frame["state"] == "COMPLETE") & frame[metric].notna() & frame[column].notna()]
    figure = go.Figure()
    present = ordered_values(rows[column])
    for value in [v for v in order if v in present] or present:
        subset = rows[rows[column].map(_label) == value]
        figure.add_trace(go.Box(y=subset[metric], name=value, boxpoints="all", jitter=0.4,
                                pointpos=0, hovertext=hover_texts(subset, info), hoverinfo="text+y"))
    log = log_latency and metric == info.latency_objective
    figure.update_layout(xaxis_title=dimension, yaxis_title=axis_title(metric, info, note), showlegend=False,
                         yaxis_type="log" if log else "linear", height=340, margin={"t": 30})
    return figure
