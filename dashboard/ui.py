"""Streamlit plumbing shared by the pages: storage, sidebar, sticky widgets, loading, banners.

Selections survive page switches and live refreshes: every selection widget is *sticky*, its
value copied to ``st.session_state["keep.<name>"]`` and restored when the widget comes back,
so Streamlit's clean-up of widgets that a run did not draw loses nothing. The page body runs
in a fragment that reruns every few seconds while live refresh is on; the sidebar does not
rerun then, so the user's choices stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import optuna
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard.data import SOURCE_LABELS, latency_kind
from dashboard.info import study_info
from dashboard.storage import (
    ReadOnlyStorage,
    StorageChoice,
    StorageProblem,
    display_url,
    open_storage,
    storage_identity,
)
from dashboard.study import LoadedStudy, read_study

PAGES: tuple[str, ...] = ("Studies", "Pareto", "Trial", "Insight", "Fleet")
LIVE_INTERVALS: tuple[int, ...] = (2, 5, 10, 30, 60)
DEFAULT_LIVE_SECONDS = 5


@dataclass
class PageContext:
    """What every page receives.

    Attributes:
        choice: The storage URL and its source.
        storage: The opened read-only storage.
        study_names: Study names, oldest first.
        study_name: The study chosen in the sidebar (None when there are none).
    """

    choice: StorageChoice
    storage: ReadOnlyStorage
    study_names: list[str]
    study_name: str | None


@st.cache_resource(ttl=600, show_spinner=False, max_entries=8)
def cached_storage(url: str, identity: tuple[int, int] | None) -> ReadOnlyStorage:
    """The storage for ``url``, opened once per process and file identity (failures are not cached).

    ``identity`` (see :func:`dashboard.storage.storage_identity`) changes when a SQLite file is
    deleted and created again, so the dashboard never keeps reading a removed file.
    """
    return open_storage(url)


def forget_storage() -> None:
    """Drop cached storages (after a read failed, e.g. the file was replaced)."""
    cached_storage.clear()


def show_problem(problem: StorageProblem) -> None:
    """A storage problem as a message box, never a traceback."""
    body = problem.message + (f"\n\n{problem.hint}" if problem.hint else "")
    (st.info if problem.severity == "info" else st.error)(body)


def sticky(widget: Callable[..., Any], name: str, options: Sequence[Any] | None, default: Any,
           label: str, **kwargs: Any) -> Any:
    """Draw ``widget`` with key ``w.<name>``, keeping its value across runs and page switches.

    Args:
        widget: A Streamlit widget function (``st.selectbox``, ``st.sidebar.radio``, ...).
        name: Stable name of the selection.
        options: The widget's options (None for widgets without options, e.g. toggles).
        default: Value when nothing was chosen yet or the choice is no longer an option.
        label: Widget label.
        **kwargs: Passed to ``widget``.
    """
    key, keep = f"w.{name}", f"keep.{name}"
    valid = (lambda v: v in options) if options is not None else (lambda v: v is not None)
    if not valid(st.session_state.get(key)):
        st.session_state[key] = st.session_state[keep] if valid(st.session_state.get(keep)) else default
    if options is None:
        value = widget(label, key=key, **kwargs)
    else:
        value = widget(label, list(options), key=key, **kwargs)
    st.session_state[keep] = value
    return value


def _query_default(name: str, options: Sequence[str], fallback: str) -> str:
    value = st.query_params.get(name)
    return value if value is not None and value in options else fallback


def sidebar(choice: StorageChoice) -> PageContext | None:
    """Page selector, storage line, study selector and live settings; None when nothing to show.

    Shows the storage problem (or "no studies yet") in the main area when there is one.
    """
    st.sidebar.title("hwsearch")
    page = sticky(st.sidebar.radio, "page", PAGES, _query_default("page", PAGES, PAGES[0]), "Page")
    st.query_params["page"] = page
    st.sidebar.caption(f"Storage ({choice.source}): `{display_url(choice.url)}` — read-only")
    if st.sidebar.button("Reload now", help="Reconnect to the storage and read everything again"):
        forget_storage()
    try:
        storage = cached_storage(choice.url, storage_identity(choice.url))
        study_names = [s.study_name for s in storage.optuna_storage.get_all_studies()]
    except StorageProblem as problem:
        show_problem(problem)
        return None
    except SQLAlchemyError as exc:
        forget_storage()
        show_problem(StorageProblem(f"cannot read {display_url(choice.url)}: {str(exc).splitlines()[0]}"))
        return None
    study_name = None
    if study_names:
        default = _query_default("study", study_names, study_names[-1])
        study_name = sticky(st.sidebar.selectbox, "study", study_names, default, "Study")
        st.query_params["study"] = study_name
    live = sticky(st.sidebar.toggle, "live", None, True, "Live refresh")
    sticky(st.sidebar.select_slider, "live_every", LIVE_INTERVALS, DEFAULT_LIVE_SECONDS,
           "Refresh every (s)", disabled=not live)
    if not study_names:
        show_problem(StorageProblem(
            f"no studies yet in {storage.display_url}",
            "start one with `python -m search.launch --space esfair`", severity="info",
        ))
        return None
    return PageContext(choice, storage, study_names, study_name)


def live_seconds() -> int | None:
    """Seconds between refreshes of the page body, or None when live refresh is off."""
    if not st.session_state.get("keep.live"):
        return None
    return int(st.session_state.get("keep.live_every") or DEFAULT_LIVE_SECONDS)


def load_study(ctx: PageContext, name: str | None = None) -> LoadedStudy:
    """Read study ``name`` (default: the chosen one) and mark its Pareto front."""
    storage = ctx.storage.optuna_storage
    study_name = name or ctx.study_name
    assert study_name is not None
    study_id = storage.get_study_id_from_name(study_name)
    frozen = next(s for s in storage.get_all_studies() if s.study_name == study_name)
    return read_study(study_info(frozen), storage.get_all_trials(study_id, deepcopy=False))


LATENCY_WARNINGS: dict[str, str] = {
    "FAKE": "uses the fake latency backend, so its latency figures are computed from model size and input "
            "pixels, not measured on a device.",
    "EMULATED": "has latency figures timed under an instruction-set emulator: they say nothing about the "
                "device's real speed.",
    "PREDICTED": "has latency figures predicted by a model, not measured on the device.",
}


def fake_banner(study: LoadedStudy) -> None:
    """The warning every page shows for a study whose latency is FAKE, EMULATED or PREDICTED."""
    kind = latency_kind(study.info, study.frame)
    if kind in SOURCE_LABELS.values():
        st.warning(f"{kind} latency: study {study.info.name!r} {LATENCY_WARNINGS[kind]}")


def study_page(ctx: PageContext, title: str) -> LoadedStudy | None:
    """Open a page about the chosen study: header, FAKE warning, and the empty-study message.

    Returns:
        The loaded study, or None when it has no trials yet (the page has then said so).
    """
    study = load_study(ctx)
    st.header(f"{title} — {study.info.name}")
    fake_banner(study)
    if study.frame.empty:
        st.info("This study has no trials yet.")
        return None
    return study


def guarded(render: Callable[[PageContext], None]) -> Callable[[PageContext], None]:
    """Wrap a page so a database that fails mid-read shows a message, not a traceback."""

    def run(ctx: PageContext) -> None:
        try:
            render(ctx)
        except (SQLAlchemyError, KeyError, optuna.exceptions.StorageInternalError) as exc:
            forget_storage()
            show_problem(StorageProblem(
                f"reading {ctx.storage.display_url} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                "the database may have been replaced or the server went away; it is retried on the next refresh",
            ))

    return run
