"""Pareto page: the front in 2-D projections and 3-D, members dominated within noise, stopped trials,
hypervolume, and what ``search.export --pick`` would choose."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.data import half_width_column, param_columns, projection_pairs, score_column
from dashboard.info import StudyInfo
from dashboard.pareto import (
    FRONT_INFEASIBLE,
    FRONT_MEMBERS,
    FRONT_NOISE,
    FRONT_STOPPED,
    current_hypervolume,
    export_picks,
    hypervolume_frame,
)
from dashboard.study import LoadedStudy
from dashboard.ui import PageContext, sticky, study_page

PREFERRED_COLOUR = ("backbone", "quant", "resolution", "width", "prune_ratio", "fairness_method")


def colour_options(frame: pd.DataFrame) -> list[str]:
    """Colour choices: none, the fidelity columns, then the parameters (preferred ones first)."""
    params = [p for p in param_columns(frame) if p not in charts.FIDELITY_DIMENSIONS]
    return ([charts.NO_COLOUR, *charts.FIDELITY_DIMENSIONS] + [p for p in PREFERRED_COLOUR if p in params]
            + [p for p in params if p not in PREFERRED_COLOUR])


def front_table(frame: pd.DataFrame, info: StudyInfo, picks: dict[str, int]) -> pd.DataFrame:
    """The front's members with their figures, intervals, noise mark and the export picks they are."""
    members = frame[frame["front"].isin(FRONT_MEMBERS)].copy()
    chosen: dict[int, list[str]] = {}
    for pick, number in picks.items():
        chosen.setdefault(number, []).append(pick)
    members["export --pick"] = members["number"].map(lambda n: ", ".join(chosen.get(int(n), [])))
    figures = [c for name in info.objective_names for c in (name, half_width_column(name))]
    figures += [d.label for d in info.details] + [score_column(s) for s in info.scores]
    shown = ["number", "candidate", *figures, "dominated_by", "export --pick", "baseline", "latency_label"]
    return members[shown].rename(columns={"dominated_by": "dominated within noise by", "latency_label": "latency"})


def _controls(frame: pd.DataFrame) -> tuple[str, bool, bool, bool, bool]:
    options = colour_options(frame)
    left, *toggles = st.columns([3, 1, 1, 1, 1])
    with left:
        colour_by = sticky(st.selectbox, "colour_by", options,
                           "backbone" if "backbone" in options else charts.NO_COLOUR, "Colour the front by")
    with toggles[0]:
        dominated = sticky(st.toggle, "show_dominated", None, True, "Dominated trials")
    with toggles[1]:
        stopped = sticky(st.toggle, "show_stopped", None, True, "Stopped trials")
    with toggles[2]:
        infeasible = sticky(st.toggle, "show_infeasible", None, True, "Infeasible trials")
    with toggles[3]:
        log_latency = sticky(st.toggle, "log_latency", None, True, "Log latency axis")
    return colour_by, dominated, stopped, infeasible, log_latency


def _hypervolume(study: LoadedStudy) -> None:
    st.subheader("Hypervolume over trials")
    history = hypervolume_frame(study.view, study.info)
    if history.empty:
        st.info("No trial finished the top rung within every budget and floor yet: no hypervolume.")
        return
    st.plotly_chart(charts.hypervolume_figure(history, uirevision=study.info.name), width="stretch", key="hv")
    st.caption(
        f"Now {current_hypervolume(study.view, study.info):.4f}: the hypervolume of the competing trials as a "
        "fraction of the reference box, as the launcher's report computes it. Objectives are scaled to losses in "
        "[0, 1] between their best and worst admissible values (accuracy 1 to 0, latency 0 to the budget; "
        "observed extremes where the task declares none); the reference point is 1.1 on every axis."
    )


def render(ctx: PageContext) -> None:
    """Draw the Pareto page of the chosen study."""
    study = study_page(ctx, "Pareto front")
    if study is None:
        return
    info, frame = study.info, study.frame
    colour_by, dominated, stopped, infeasible, log_latency = _controls(frame)
    counts = frame["front"].value_counts()
    members = int(sum(counts.get(m, 0) for m in FRONT_MEMBERS))
    st.caption(
        f"{members} Pareto trials ({int(counts.get(FRONT_NOISE, 0))} of them dominated within noise: black ring), "
        f"{int(counts.get(FRONT_STOPPED, 0))} stopped at a lower rung (faint circles, at their last rung's "
        f"figures), {int(counts.get(FRONT_INFEASIBLE, 0))} infeasible (red crosses; screened-out ones on the rug "
        f"under the points), {len(frame)} trials in all. Stars mark baselines; dominated trials are grey. "
        "Hover a point for its candidate."
    )
    if len(info.objectives) < 2:
        st.info("Pareto charts need at least two objectives.")
        return
    views: list[tuple[str, tuple[str, ...]]] = [(f"{y} vs {x}", (x, y)) for x, y in projection_pairs(info)]
    if len(info.objectives) == 3:
        views.append(("3-D", tuple(info.objective_names)))
    columns = st.columns(min(2, len(views)))
    for index, (title, axes) in enumerate(views):
        with columns[index % len(columns)]:
            st.subheader(title)
            figure = charts.pareto_figure(frame, info, axes, colour_by, dominated, infeasible, log_latency,
                                          uirevision=f"{info.name}/{'/'.join(axes)}", show_stopped=stopped)
            st.plotly_chart(figure, width="stretch", key=f"pareto-{'-'.join(axes)}")
    _hypervolume(study)
    st.subheader("Pareto trials")
    picks = export_picks(frame, info)
    st.dataframe(front_table(frame, info, picks), hide_index=True, width="stretch")
    if picks:
        st.caption("`search.export --pick` chooses among the members not dominated within noise: "
                   + "; ".join(f"{pick} → trial {number}" for pick, number in picks.items()))
