"""Trial page: one trial's candidate, per-group accuracy, confusion, latency, costs and artifact."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from dashboard import charts, detail
from dashboard.data import FAKE_LABEL, StudyInfo, candidate_params, latency_record, latency_source
from dashboard.pareto import FRONT_PARETO
from dashboard.ui import LoadedStudy, PageContext, sticky, study_page
from search import attrs


def _labels(study: LoadedStudy) -> dict[int, str]:
    labels = {}
    for row in study.frame.itertuples(index=False):
        mark = " ★ Pareto" if row.front == FRONT_PARETO else ""
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


def _figures(metrics: Mapping[str, Any], info: StudyInfo, row: pd.Series) -> None:
    columns = st.columns(len(info.objectives) + 2)
    for column, name in zip(columns, info.objective_names):
        value = row[name]
        fake = f" ({FAKE_LABEL})" if name == info.latency_objective and row["fake_latency"] else ""
        column.metric(name + fake, "n/a" if pd.isna(value) else f"{value:.4g}")
    spd = (metrics.get("fairness") or {}).get("spd")
    columns[-2].metric("SPD", "n/a" if spd is None else f"{spd:.4f}")
    size = metrics.get("size_bytes")
    columns[-1].metric("size (MB)", "n/a" if size is None else f"{size / 1e6:.2f}")


def _latency(study: LoadedStudy, user_attrs: Mapping[str, Any]) -> None:
    st.subheader("Latency")
    record = latency_record(user_attrs)
    if not record:
        st.caption("No latency record.")
        return
    source = latency_source(record)
    (st.warning if record.get("fake") else st.caption)(f"Measured by: {source}")
    stats = detail.latency_stats_frame(record)
    title = "ms" + (charts.FAKE_AXIS_NOTE if record.get("fake") else "")
    st.plotly_chart(charts.latency_figure(stats, record.get("std_ms"), title, study.info.latency_budget_ms),
                    width="stretch", key="trial-latency")
    extra = [f"n={record.get('n', '?')} runs", f"{record.get('threads', '?')} thread(s)",
             f"runtime {record.get('runtime') or '?'}"]
    if record.get("agent"):
        extra.append(f"agent {record['agent']}")
    if record.get("cached"):
        extra.append("from the latency cache")
    st.caption(", ".join(extra))


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
    metrics = user_attrs.get(attrs.METRICS) or {}
    if row["state"] == "FAIL":
        st.error(f"Trial {number} failed: {row['fail_reason'] or 'no reason stored'}")
    elif not row["trained"]:
        st.info(f"Trial {number} was not trained: {row['infeasible_reason'] or 'no reason stored'}. "
                "Only its latency was measured.")
    _figures(metrics, study.info, row)
    st.subheader("Candidate")
    st.markdown(f"`{row['candidate']}`")
    st.dataframe(detail.params_frame(candidate_params(trial)), hide_index=True, width="stretch")
    if metrics:
        left, right = st.columns(2)
        with left:
            st.subheader("Accuracy per group")
            st.plotly_chart(charts.group_accuracy_figure(detail.group_accuracy_frame(metrics)),
                            width="stretch", key="trial-groups")
            st.caption(f"Split: {metrics.get('split', '?')}; red bar: the minority group SPD compares with.")
        with right:
            st.subheader("Confusion matrix")
            st.plotly_chart(charts.confusion_figure(detail.confusion_frame(metrics)), width="stretch",
                            key="trial-confusion")
    test = study.info.test_metrics.get(number)
    if test:
        st.caption(f"Held-out test split: accuracy {test.get('accuracy', math.nan):.4f}, "
                   f"SPD {(test.get('fairness') or {}).get('spd', math.nan):.4f}")
    _latency(study, user_attrs)
    stages = detail.stage_frame(user_attrs.get(attrs.STAGE_SECONDS) or metrics.get("stage_seconds") or {})
    st.subheader("Cost per stage")
    if stages.empty:
        st.caption("No stage timings stored.")
    else:
        st.plotly_chart(charts.stage_figure(stages), width="stretch", key="trial-stages")
    _artifact_section(ctx, study, number, user_attrs, metrics)
