"""Pareto page: the front in 2-D projections and 3-D, coloured by a dimension, and hypervolume."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.data import param_columns, projection_pairs
from dashboard.pareto import FRONT_INFEASIBLE, FRONT_PARETO, hypervolume_history
from dashboard.ui import PageContext, sticky, study_page

PREFERRED_COLOUR = ("backbone", "quant", "resolution", "width", "prune_ratio")


def render(ctx: PageContext) -> None:
    """Draw the Pareto page of the chosen study."""
    study = study_page(ctx, "Pareto front")
    if study is None:
        return
    info, frame = study.info, study.frame
    params = param_columns(frame)
    options = [charts.NO_COLOUR] + [p for p in PREFERRED_COLOUR if p in params] + [
        p for p in params if p not in PREFERRED_COLOUR
    ]
    left, *toggles = st.columns([3, 1, 1, 1])
    with left:
        colour_by = sticky(st.selectbox, "colour_by", options,
                           "backbone" if "backbone" in options else charts.NO_COLOUR, "Colour the front by")
    with toggles[0]:
        show_dominated = sticky(st.toggle, "show_dominated", None, True, "Dominated trials")
    with toggles[1]:
        show_infeasible = sticky(st.toggle, "show_infeasible", None, True, "Infeasible trials")
    with toggles[2]:
        log_latency = sticky(st.toggle, "log_latency", None, True, "Log latency axis")
    counts = frame["front"].value_counts()
    st.caption(
        f"{int(counts.get(FRONT_PARETO, 0))} Pareto trials, {int(counts.get(FRONT_INFEASIBLE, 0))} infeasible "
        f"(over budget; red crosses; untrained ones on the rug under the points), {len(frame)} trials in all. "
        "Stars mark baselines; dominated trials are grey. Hover a point for its candidate."
    )
    if len(info.objectives) < 2:
        st.info("Pareto charts need at least two objectives.")
        return
    views: list[tuple[str, tuple[str, ...]]] = [(f"{y} vs {x}", (x, y)) for x, y in projection_pairs(info)]
    if len(info.objectives) == 3:
        views.append(("3-D", tuple(info.objective_names)))
    columns = st.columns(2)
    for index, (title, axes) in enumerate(views):
        with columns[index % 2]:
            st.subheader(title)
            figure = charts.pareto_figure(frame, info, axes, colour_by, show_dominated, show_infeasible,
                                          log_latency, uirevision=f"{info.name}/{'/'.join(axes)}")
            st.plotly_chart(figure, width="stretch", key=f"pareto-{'-'.join(axes)}")
    st.subheader("Hypervolume over trials")
    history = hypervolume_history(frame, info)
    if history.empty:
        st.info("No COMPLETE, feasible trial yet: no hypervolume.")
    else:
        st.plotly_chart(charts.hypervolume_figure(history, uirevision=info.name), width="stretch", key="hv")
        st.caption(
            "Hypervolume of the feasible trials so far, as a fraction of the reference box: objectives as losses, "
            "scaled to [0, 1] between the study's current best and worst feasible values, reference point 1.1 "
            "on every axis. It tracks progress within this study only."
        )
    st.subheader("Pareto trials")
    front = frame[frame["front"] == FRONT_PARETO]
    shown = ["number", "candidate", *info.objective_names, "baseline", "latency_source"]
    st.dataframe(front[shown], hide_index=True, width="stretch")
