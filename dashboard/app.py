"""Entry point: ``streamlit run dashboard/app.py [-- --storage URL]``.

The storage URL comes from ``--storage``, else ``HWSEARCH_STORAGE``, else
``sqlite:///runs/hwsearch.db`` (see :mod:`dashboard.storage`); the dashboard only reads it.
The page is chosen in the sidebar (and kept in the ``?page=`` query parameter, with the study in
``?study=``, so a link opens the same view). While live refresh is on, the page body reruns
every few seconds in a fragment and keeps every selection.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import optuna  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402
from dashboard.storage import resolve_storage_url  # noqa: E402
from dashboard.views import fleet, insight, pareto, studies, trial  # noqa: E402

RENDERERS = {
    "Studies": studies.render,
    "Pareto": pareto.render,
    "Trial": trial.render,
    "Insight": insight.render,
    "Fleet": fleet.render,
}


def main() -> None:
    """Draw the sidebar, then the chosen page (in a live fragment when live refresh is on)."""
    st.set_page_config(page_title="hwsearch dashboard", layout="wide")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    choice = resolve_storage_url(sys.argv[1:], os.environ)
    context = ui.sidebar(choice)
    if context is None:
        return
    page = st.session_state["keep.page"]
    body = ui.guarded(RENDERERS[page])
    st.fragment(body, run_every=ui.live_seconds())(context)


main()
