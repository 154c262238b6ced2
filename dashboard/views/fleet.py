"""Fleet page: agents with device, last seen and jobs done; queue depth; recent failures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.fleet import read_fleet
from dashboard.ui import PageContext

NO_FLEET = "no fleet tables in this database"


def render(ctx: PageContext) -> None:
    """Draw the Fleet page (a note when the database has no fleet tables)."""
    st.header("Fleet")
    snapshot = read_fleet(ctx.storage.engine)
    if snapshot is None:
        st.info(f"{NO_FLEET} ({ctx.storage.display_url}). The fleet coordinator creates them when a "
                "search uses `--latency remote`.")
        return
    first, second, third, fourth = st.columns(4)
    first.metric("agents", len(snapshot.agents))
    second.metric("queue depth", snapshot.queue_depth)
    third.metric("running jobs", snapshot.running)
    fourth.metric("recent failures", len(snapshot.failures))
    st.subheader("Agents")
    if snapshot.agents.empty:
        st.info("No agent has registered yet.")
    else:
        st.dataframe(snapshot.agents, hide_index=True, width="stretch")
    st.subheader("Jobs by state")
    states = pd.DataFrame(sorted(snapshot.job_states.items()), columns=["state", "jobs"])
    st.dataframe(states, hide_index=True, width="stretch")
    st.subheader("Recent failures")
    if snapshot.failures.empty:
        st.caption("No failed job.")
    else:
        st.dataframe(snapshot.failures, hide_index=True, width="stretch")
    for note in snapshot.notes:
        st.caption(note)
