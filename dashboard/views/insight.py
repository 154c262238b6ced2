"""Insight page: Optuna's parameter importances per objective and per-dimension effects."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st
from optuna.trial import FrozenTrial

from dashboard import charts
from dashboard.data import StudyInfo
from dashboard.insight import EVALUATORS, InsightError, dimension_effects, effect_dimensions, param_importances
from dashboard.ui import LoadedStudy, PageContext, sticky, study_page


def _signature(frame: pd.DataFrame, objective: str) -> tuple[tuple[int, float], ...]:
    known = frame.loc[(frame["state"] == "COMPLETE") & frame[objective].notna(), ["number", objective]]
    return tuple(zip(known["number"].astype(int), known[objective].astype(float)))


@st.cache_data(show_spinner="Computing importances…", max_entries=64)
def _importances(url: str, study: str, objective: str, evaluator: str, signature: tuple,
                 _trials: Sequence[FrozenTrial], _frame: pd.DataFrame, _info: StudyInfo) -> pd.DataFrame:
    return param_importances(_trials, _frame, _info, objective, evaluator)


def _importance_section(ctx: PageContext, study: LoadedStudy) -> None:
    st.subheader("Parameter importances per objective")
    evaluator = sticky(st.selectbox, "evaluator", list(EVALUATORS), "fanova", "Importance evaluator",
                       format_func=EVALUATORS.get)
    columns = st.columns(len(study.info.objectives))
    for column, objective in zip(columns, study.info.objective_names):
        with column:
            try:
                table = _importances(ctx.choice.url, study.info.name, objective, evaluator,
                                     _signature(study.frame, objective), study.trials, study.frame, study.info)
            except InsightError as exc:
                st.info(str(exc))
                continue
            st.plotly_chart(charts.importance_figure(table, objective), width="stretch",
                            key=f"importance-{objective}")
    st.caption("Optuna's importances on the trials whose value of that objective is known: latency counts "
               "untrained (over-budget) trials, accuracy and fairness count trained ones only.")


def _effects_section(study: LoadedStudy) -> None:
    st.subheader("How each dimension moves the objectives")
    dimensions = effect_dimensions(study.frame)
    if not dimensions:
        st.info("The trials carry no parameters.")
        return
    dimension = sticky(st.selectbox, "dimension", dimensions, dimensions[0], "Dimension")
    columns = st.columns(len(study.info.objectives))
    for column, objective in zip(columns, study.info.objective_names):
        with column:
            st.plotly_chart(charts.effect_figure(study.frame, dimension, objective, study.info,
                                                 study.latency_is_fake),
                            width="stretch", key=f"effect-{objective}")
            table = dimension_effects(study.frame, dimension, objective)
            st.dataframe(table, hide_index=True, width="stretch")


def render(ctx: PageContext) -> None:
    """Draw the Insight page of the chosen study."""
    study = study_page(ctx, "Insight")
    if study is None:
        return
    _importance_section(ctx, study)
    _effects_section(study)
