"""Trial page: one trial's status, figures with intervals, candidate, groups, latency, rungs, costs, artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from dashboard import charts, detail, trial_charts
from dashboard.data import (
    NO_FAIRNESS_METHOD,
    SOURCE_LABELS,
    candidate_params,
    figure_interval,
    half_width_column,
    latency_label,
    latency_record,
    latency_source,
    trial_metrics,
)
from dashboard.fidelity import rung_epochs, rung_history, stopped_text
from dashboard.info import StudyInfo
from dashboard.pareto import FRONT_MEMBERS, FRONT_NOISE, FRONT_PARETO
from dashboard.study import LoadedStudy
from dashboard.ui import PageContext, sticky, study_page
from search import attrs


def _labels(study: LoadedStudy) -> dict[int, str]:
    labels = {}
    for row in study.frame.itertuples(index=False):
        mark = {FRONT_PARETO: " ★ Pareto", FRONT_NOISE: " ☆ Pareto (within noise)"}.get(row.front, "")
        base = f" [baseline {row.baseline}]" if row.baseline else ""
        labels[int(row.number)] = f"#{row.number} {row.state}{mark}{base} — {row.candidate}"
    return labels


def _default_trial(study: LoadedStudy) -> int:
    front = study.frame[study.frame["front"] == FRONT_PARETO]
    rows = front if len(front) else study.frame
    return int(rows["number"].iloc[-1])


@st.cache_data(show_spinner=False, max_entries=16)
def _artifact(path: str, mtime: float, expected: str) -> detail.ArtifactCheck:
    return detail.read_artifact(Path(path), expected)


def _status(row: pd.Series, info: StudyInfo) -> None:
    number = int(row["number"])
    if row["state"] == "FAIL":
        st.error(f"Trial {number} failed: {row['fail_reason'] or 'no reason stored'}")
    elif row["state"] == "PRUNED":
        shown = " Its figures are those of its last rung." if not pd.isna(row["rung"]) else ""
        st.info(f"Trial {number} {stopped_text(row, info)}. It never competes for the front.{shown}")
    elif row["state"] == "RUNNING":
        where = rung_epochs(info, row["rung"]) or "none yet"
        st.info(f"Trial {number} is running (or parked waiting for a promotion decision); last rung finished: "
                f"{where}.")
    elif not row["trained"]:
        st.info(f"Trial {number} was not trained: {row['infeasible_reason'] or 'no reason stored'}. "
                "Only its latency was measured.")
    elif not row["feasible"]:
        st.warning(f"Trial {number} is infeasible: {row['infeasible_reason'] or 'no reason stored'}.")
    if row["front"] == FRONT_NOISE:
        st.warning(f"On the Pareto front only by differences smaller than the figures' noise: dominated within "
                   f"noise by trial {int(row['dominated_by'])} (search.export --pick ignores it).")
    elif row["front"] in FRONT_MEMBERS:
        st.success("On the Pareto front.")
    if row["continues"] is not None and not pd.isna(row["continues"]):
        st.caption(f"Continues interrupted trial {int(row['continues'])} from its last promoted rung checkpoint.")


def _figures(metrics: Mapping[str, Any], latency: Mapping[str, Any], info: StudyInfo, row: pd.Series) -> None:
    columns = st.columns(len(info.objectives) + 1)
    for column, name in zip(columns, info.objective_names):
        value, half = row[name], row[half_width_column(name)]
        label = SOURCE_LABELS.get(row["latency_source"]) if name == info.latency_objective else None
        text = "n/a" if pd.isna(value) else f"{value:.4g}" + ("" if pd.isna(half) else f" ± {half:.2g}")
        column.metric(name + (f" ({label})" if label else ""), text)
    size = metrics.get("size_bytes")
    columns[-1].metric("size (MB)", "n/a" if size is None else f"{size / 1e6:.2f}")
    shown = dict(metrics) if metrics else {"latency": dict(latency)}
    st.dataframe(detail.figures_frame(shown, info), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in detail.FIGURE_COLUMNS[2:]})
    epochs = f" after {int(row['epochs'])} epochs" if not pd.isna(row["epochs"]) else ""
    within = " (resampled within each group)" if metrics.get("per_group_accuracy") else ""
    st.caption(f"Split {metrics.get('split', '?')}{epochs}, evaluated at batch {metrics.get('eval_batch', 1)}; "
               f"intervals: bootstrap 95 %{within}, the median's 95 % CI for latency.")


def _candidate(trial: Any, row: pd.Series) -> None:
    st.subheader("Candidate")
    st.markdown(f"`{row['candidate']}`")
    params = candidate_params(trial)
    method = str(params.get("fairness_method") or NO_FAIRNESS_METHOD)
    warm = "yes" if params.get("warm_start") else "no"
    st.caption(f"Fairness method: **{method}** · warm start: {warm}")
    st.dataframe(detail.params_frame(params), hide_index=True, width="stretch")


def _groups(metrics: Mapping[str, Any]) -> None:
    groups = detail.group_accuracy_frame(metrics)
    matrix = detail.confusion_frame(metrics)
    left, right = st.columns(2)
    if not groups.empty:
        with left:
            st.subheader("Accuracy per group")
            st.plotly_chart(trial_charts.group_accuracy_figure(groups), width="stretch", key="trial-groups")
            st.caption("Error bars: 95 % intervals. Red bar: the minority group fairness figures compare with.")
    if not matrix.empty:
        with right if not groups.empty else left:
            st.subheader("Confusion matrix")
            st.plotly_chart(trial_charts.confusion_figure(matrix), width="stretch", key="trial-confusion")


def _latency(study: LoadedStudy, user_attrs: Mapping[str, Any]) -> None:
    st.subheader("Latency")
    record = latency_record(user_attrs)
    if not record:
        st.caption("No latency record.")
        return
    label = latency_label(record)
    (st.warning if latency_source(record) in SOURCE_LABELS or record.get("under_load") else st.caption)(
        f"Measured by: {label} — source: {latency_source(record)}")
    stats = detail.latency_stats_frame(record)
    title = "ms" + charts.LATENCY_NOTES.get(latency_source(record), "")
    ci = figure_interval({"latency": record}, "latency.median_ms")
    st.plotly_chart(trial_charts.latency_figure(stats, record.get("std_ms"), title, study.info.latency_budget_ms,
                                                ci, record.get("round_medians_ms") or ()),
                    width="stretch", key="trial-latency")
    st.caption(", ".join(detail.latency_facts(record)))


def _rungs(user_attrs: Mapping[str, Any], info: StudyInfo) -> None:
    history = rung_history(user_attrs, info)
    if history.empty:
        return
    st.subheader("Rung history")
    st.plotly_chart(trial_charts.rung_history_figure(history, info.objective_names), width="stretch",
                    key="trial-rungs")
    st.dataframe(history, hide_index=True, width="stretch")


def _test(study: LoadedStudy, number: int) -> None:
    test = study.info.test_metrics.get(number)
    if not test:
        return
    st.subheader("Held-out test split")
    st.dataframe(detail.figures_frame(test, study.info), hide_index=True, width="stretch")


def _artifact_section(ctx: PageContext, study: LoadedStudy, number: int, user_attrs: Mapping[str, Any],
                      metrics: Mapping[str, Any]) -> None:
    st.subheader("Artifact and export")
    stored = str(user_attrs.get(attrs.ARTIFACT_PATH) or metrics.get("artifact_path") or "")
    expected = str(user_attrs.get(attrs.ARTIFACT_SHA256) or metrics.get("artifact_sha256") or "")
    path = detail.resolve_artifact(stored, study.info.out_dir, Path.cwd())
    if not stored:
        st.caption("This trial stored no artifact.")
    elif path is None:
        st.caption(f"Artifact `{stored}` is not on this machine.")
    else:
        try:
            check = _artifact(str(path), path.stat().st_mtime, expected)
        except (OSError, ValueError) as exc:
            st.warning(f"cannot offer {path}: {exc}")
        else:
            verdict = {True: "sha256 matches the stored hash", False: "sha256 DIFFERS from the stored hash",
                       None: "no stored hash to compare"}[check.matches]
            (st.caption if check.matches is not False else st.error)(f"`{path}` — {verdict}")
            st.download_button(f"Download {path.name}", check.data, file_name=path.name,
                               mime="application/octet-stream", key="download-artifact")
    command = detail.export_command(ctx.storage.display_url, study.info.name, number,
                                    detail.default_export_dir(study.info.name, number))
    st.code(command, language="bash")
    if "***" in ctx.storage.display_url:
        st.caption("The password in the storage URL is hidden: put it back before running the command.")


def render(ctx: PageContext) -> None:
    """Draw the Trial page of the chosen study."""
    study = study_page(ctx, "Trial")
    if study is None:
        return
    labels = _labels(study)
    number = sticky(st.selectbox, f"trial.{study.info.name}", list(labels), _default_trial(study), "Trial",
                    format_func=labels.get)
    trial = next(t for t in study.trials if t.number == number)
    row = study.frame.loc[study.frame["number"] == number].iloc[0]
    user_attrs = trial.user_attrs
    metrics = trial_metrics(user_attrs)
    _status(row, study.info)
    _figures(metrics, latency_record(user_attrs), study.info, row)
    _candidate(trial, row)
    if metrics:
        _groups(metrics)
    _latency(study, user_attrs)
    _rungs(user_attrs, study.info)
    _test(study, number)
    stages = detail.stage_frame(user_attrs.get(attrs.STAGE_SECONDS) or metrics.get("stage_seconds") or {})
    st.subheader("Cost per stage")
    if stages.empty:
        st.caption("No stage timings stored.")
    else:
        st.plotly_chart(trial_charts.stage_figure(stages), width="stretch", key="trial-stages")
    _artifact_section(ctx, study, number, user_attrs, metrics)
