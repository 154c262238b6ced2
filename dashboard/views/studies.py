"""Studies page: every study with its space, device, trial counts, best figures, last activity."""

from __future__ import annotations

import streamlit as st

from dashboard.data import FAKE_LABEL, studies_table, study_summary
from dashboard.pareto import FRONT_PARETO
from dashboard.ui import PageContext, load_study


def render(ctx: PageContext) -> None:
    """Draw the Studies page."""
    st.header("Studies")
    rows = []
    for name in ctx.study_names:
        loaded = load_study(ctx, name)
        pareto = int((loaded.frame["front"] == FRONT_PARETO).sum()) if len(loaded.frame) else 0
        rows.append(study_summary(loaded.info, loaded.frame, pareto))
    table = studies_table(rows)
    first, second, third = st.columns(3)
    first.metric("studies", len(table))
    second.metric("trials", int(table["trials"].sum()))
    third.metric("running trials", int(table["running"].sum()))
    fake = table.loc[table["latency"] == FAKE_LABEL, "study"].tolist()
    if fake:
        st.warning(f"{FAKE_LABEL} latency (computed, not measured) in: {', '.join(fake)}")
    number = st.column_config.NumberColumn(format="%.4f")
    best = {c: number for c in table.columns if c.startswith("best ")}
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={"last activity": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"), **best},
    )
    st.caption(
        "Counts are per Optuna state; feasible / infeasible and best figures count COMPLETE trials, "
        "best figures feasible ones only. Choose the study the other pages show in the sidebar."
    )
