"""Insight page: Optuna's parameter importances per objective, per-dimension effects and, for studies
whose data has groups, the effect of the fairness methods."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st
from optuna.trial import FrozenTrial

from dashboard import charts
from dashboard.data import has_groups
from dashboard.info import StudyInfo
from dashboard.insight import (
    EVALUATORS,
    InsightError,
    dimension_effects,
    effect_dimensions,
    fairness_figures,
    fairness_method_effects,
    param_importances,
)
from dashboard.study import LoadedStudy
from dashboard.ui import PageContext, sticky, study_page


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
                                                 charts.latency_note(study.frame)),
                            width="stretch", key=f"effect-{objective}")
            table = dimension_effects(study.frame, dimension, objective)
            st.dataframe(table, hide_index=True, width="stretch")


def _fairness_section(study: LoadedStudy) -> None:
    st.subheader("Fairness methods: effect on accuracy, minority accuracy and SPD")
    table = fairness_method_effects(study.frame, study.info)
    if table.empty:
        st.info("No trial finished the top rung yet.")
        return
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns[2:]})
    rows = study.frame[(study.frame["state"] == "COMPLETE") & study.frame["trained"]]
    columns = st.columns(len(fairness_figures(study.info)))
    for column, (label, metric) in zip(columns, fairness_figures(study.info).items()):
        with column:
            figure = charts.effect_figure(study.frame, "fairness_method", metric, study.info, "",
                                          rows=rows[rows[metric].notna()], column="fairness_method",
                                          order=list(table["method"]))
            figure.update_layout(yaxis_title=label)
            st.plotly_chart(figure, width="stretch", key=f"fairness-{metric}")
    st.caption("COMPLETE trials trained at the top rung, by the candidate's fairness method (trials of older "
               "studies without one count as none): median and 25th–75th percentile. Minority accuracy is the "
               "accuracy of the group the fairness figures compare with.")


def render(ctx: PageContext) -> None:
    """Draw the Insight page of the chosen study (fairness methods only for studies whose data has groups)."""
    study = study_page(ctx, "Insight")
    if study is None:
        return
    _importance_section(ctx, study)
    _effects_section(study)
    if has_groups(study.info, study.frame):
        _fairness_section(study)
