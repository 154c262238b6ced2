"""Studies page: every study with its counts, front and budget; the chosen study's plan, rungs and occupancy."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.data import SOURCE_LABELS
from dashboard.fidelity import OUTCOMES, budget_text, ladder_text, rung_occupancy
from dashboard.summary import studies_table, study_summary
from dashboard.study import LoadedStudy
from dashboard.ui import PageContext, load_study


def _fidelity_section(study: LoadedStudy) -> None:
    info = study.info
    st.subheader(f"Budget and fidelity — {info.name}")
    if info.plan:
        st.caption(info.plan)
    budget = info.budget_s
    if info.spent_s is not None and budget:
        st.progress(min(1.0, info.spent_s / budget), text=f"budget: {budget_text(info)}")
    elif info.spent_s is not None:
        st.caption(f"budget: {budget_text(info)}")
    if not info.rungs:
        st.info("This study has no rung ladder (it predates successive halving): every candidate trained once.")
        return
    st.caption(f"Rungs: {ladder_text(info)}. Each rung's top 1/η by non-dominated rank continues; "
               "the others stop there (PRUNED).")
    occupancy = rung_occupancy(study.trials, info)
    st.plotly_chart(charts.occupancy_figure(occupancy, OUTCOMES), width="stretch", key="occupancy")
    st.dataframe(occupancy, hide_index=True, width="stretch")


def render(ctx: PageContext) -> None:
    """Draw the Studies page."""
    st.header("Studies")
    loaded = {name: load_study(ctx, name) for name in ctx.study_names}
    table = studies_table([study_summary(s.info, s.frame) for s in loaded.values()])
    first, second, third = st.columns(3)
    first.metric("studies", len(table))
    second.metric("trials", int(table["trials"].sum()))
    third.metric("running trials", int(table["running"].sum()))
    for label in SOURCE_LABELS.values():
        flagged = table.loc[table["latency"] == label, "study"].tolist()
        if flagged:
            st.warning(f"{label} latency (not measured on the device) in: {', '.join(flagged)}")
    number = st.column_config.NumberColumn(format="%.4f")
    best = {c: number for c in table.columns if c.startswith("best ")}
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={"last activity": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"), **best},
    )
    st.caption(
        "Counts are per Optuna state: COMPLETE = finished the top rung or screened out, PRUNED = stopped at a "
        "lower rung by successive halving. Infeasible, pareto and best figures count COMPLETE trials; best "
        "figures and the front only those trained at the top rung within every budget and floor. Choose the "
        "study the other pages show in the sidebar."
    )
    if ctx.study_name in loaded:
        _fidelity_section(loaded[ctx.study_name])
