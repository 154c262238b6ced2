"""Plotly figures of the Trial page (pure: frames in, figures out; no Streamlit, no storage)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import FRONT_COLOUR, INFEASIBLE_RED, budget_line
from dashboard.data import half_width_column


def group_accuracy_figure(groups: pd.DataFrame) -> go.Figure:
    """Per-group accuracy bars with their 95 % intervals as error bars; the minority group is red and labelled."""
    colours = [INFEASIBLE_RED if m else FRONT_COLOUR for m in groups["minority"]]
    labels = [f"{g} (minority)" if m else str(g) for g, m in zip(groups["group"], groups["minority"])]
    error = None
    if groups["low"].notna().any():
        error = {"type": "data", "symmetric": False, "array": (groups["high"] - groups["accuracy"]).fillna(0).tolist(),
                 "arrayminus": (groups["accuracy"] - groups["low"]).fillna(0).tolist()}
    figure = go.Figure(go.Bar(
        x=labels, y=groups["accuracy"], marker_color=colours, name="accuracy", error_y=error,
        text=[f"{a:.3f} (n={n})" for a, n in zip(groups["accuracy"], groups["samples"])],
    ))
    figure.update_layout(yaxis_title="accuracy (bars: 95 % interval)", yaxis_range=[0, 1], height=340,
                         margin={"t": 30})
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


def latency_figure(stats: pd.DataFrame, std_ms: float | None, title: str, budget_ms: float | None,
                   ci: tuple[float, float] | None = None, rounds: Sequence[float] = ()) -> go.Figure:
    """Latency summary on one axis: min, median (with its 95 % CI), mean (± std), p90, the median of
    each measurement round, and the budget."""
    figure = go.Figure()
    for _, row in stats.iterrows():
        error = None
        if row["stat"] == "mean" and std_ms:
            error = {"type": "data", "array": [std_ms]}
        elif row["stat"] == "median" and ci:
            error = {"type": "data", "symmetric": False, "array": [ci[1] - row["ms"]],
                     "arrayminus": [row["ms"] - ci[0]]}
        figure.add_trace(go.Scatter(x=[row["ms"]], y=[row["stat"]], mode="markers", name=row["stat"],
                                    marker={"size": 13}, error_x=error))
    if rounds:
        figure.add_trace(go.Scatter(x=list(rounds), y=["round medians"] * len(rounds), mode="markers",
                                    name="round medians", marker={"size": 9, "symbol": "line-ns-open"}))
    if budget_ms:
        budget_line(figure, budget_ms, "budget", log=False)
    figure.update_layout(xaxis_title=title, height=280, showlegend=False, margin={"t": 30})
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


def rung_history_figure(history: pd.DataFrame, objectives: Sequence[str]) -> go.Figure:
    """Each objective against training epochs, one panel per objective, one point per rung.

    Error bars are the rung's 95 % intervals where it stored one; hover shows the promotion decision.
    """
    figure = make_subplots(rows=1, cols=len(objectives), subplot_titles=list(objectives))
    for index, name in enumerate(objectives, start=1):
        half = history.get(half_width_column(name))
        error = {"type": "data", "array": half.fillna(0).tolist()} if half is not None and half.notna().any() else None
        figure.add_trace(go.Scatter(
            x=history["epochs"], y=history[name], mode="lines+markers", name=name, error_y=error,
            hovertext=[f"rung {r}: {d or 'no decision (top rung or waiting)'}"
                       for r, d in zip(history["rung"], history["decision"])],
            hoverinfo="text+y"), row=1, col=index)
        figure.update_xaxes(title_text="epochs", row=1, col=index)
    figure.update_layout(height=300, showlegend=False, margin={"t": 40})
    return figure
