"""Checks shared by the dashboard tests: AppTest page helpers, the CLI-agreement check of a front,
and what every page of an lpirc study (no groups) must show."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import optuna
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.pareto import FRONT_MEMBERS, current_hypervolume, export_picks
from search.front import FrontSpec, front, hypervolume, points_from_trials

PAGES = ("Studies", "Pareto", "Trial", "Insight", "Fleet")


def open_page(app: AppTest, page: str, study: str = "esfair-demo") -> AppTest:
    """Run ``app``, choose ``study`` and ``page`` in the sidebar; asserts no exception or error."""
    app.run()
    assert_clean(app)
    app.sidebar.selectbox(key="w.study").set_value(study)
    app.sidebar.radio(key="w.page").set_value(page).run()
    assert_clean(app)
    return app


def assert_clean(app: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def charts_of(app: AppTest) -> list[dict[str, Any]]:
    """The Plotly figures on the page, as their JSON specs."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def trace_names(chart: dict[str, Any]) -> list[str]:
    """Names of a figure's traces."""
    return [trace.get("name", "") for trace in chart["data"]]


def texts(elements) -> str:  # type: ignore[no-untyped-def]
    """The values of ``elements``, one per line."""
    return "\n".join(str(e.value) for e in elements)


def choose_trial(app: AppTest, study: str, number: int) -> AppTest:
    """Show trial ``number`` on the Trial page."""
    app.selectbox(key=f"w.trial.{study}").set_value(number).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def bench_common() -> ModuleType:
    """``bench/common.py``, the benches' study helpers (``bench`` is a folder of scripts, not a package)."""
    path = Path(__file__).resolve().parents[2] / "bench" / "common.py"
    spec = importlib.util.spec_from_file_location("bench_common_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def assert_same_front_as_the_cli(url: str, name: str, loaded) -> None:  # type: ignore[no-untyped-def]
    """The dashboard's front, noise marks, hypervolume and export picks equal the CLI's on study
    ``name``, and the benches' front and hypervolume equal both."""
    from search.export import pick_trial, study_task
    from search.report import front_rows

    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials(deepcopy=False)
    task = study_task(study)
    rows = front_rows(study, trials, task)
    frame = loaded.frame
    members = frame[frame["front"].isin(FRONT_MEMBERS)]
    assert rows, "the study has a front"
    assert list(members["number"]) == [r.trial.number for r in rows]
    noise = {int(n): int(b) for n, b in members.set_index("number")["dominated_by"].dropna().items()}
    assert noise == {r.trial.number: r.dominated_by for r in rows if r.dominated_by is not None}
    spec = FrontSpec.from_task(task)
    assert current_hypervolume(loaded.view, loaded.info) == pytest.approx(hypervolume(points_from_trials(trials, spec),
                                                                                     spec), abs=1e-12)
    bench = bench_common()
    assert bench.study_hypervolume(study) == pytest.approx(current_hypervolume(loaded.view, loaded.info), abs=1e-12)
    assert {p.number for p in front(bench.study_points(study), spec)} == {r.trial.number for r in rows}
    picks = export_picks(frame, loaded.info)
    hows = ["best-score"] * bool(task.primary_score) + [f"best-{n}" for n in task.objective_names]
    assert picks == {how: pick_trial(study, how).number for how in hows}


def assert_lpirc_pages(app: AppTest, study: str, trial: int) -> None:
    """Every page of an lpirc study renders with its scores and without fairness figures."""
    for page in PAGES:
        app.sidebar.radio(key="w.page").set_value(page).run()
        assert_clean(app)
        shown = texts(app.subheader) + texts(app.caption) + texts(app.markdown)
        assert not {"SPD", "minority", "group"} & set(shown.replace("(", " ").split()), page
    app.sidebar.radio(key="w.page").set_value("Pareto").run()
    charts = charts_of(app)
    assert len(charts) == 2  # accuracy vs latency, hypervolume
    assert charts[0]["layout"]["yaxis"]["title"]["text"] == "accuracy"
    table = app.dataframe[0].value
    assert {"lpirc score", "mnasnet score", "± accuracy"} <= set(table.columns)
    assert not {"SPD", "fairness", "esfair score"} & set(table.columns)
    app.sidebar.radio(key="w.page").set_value("Trial").run()
    choose_trial(app, study, trial)
    assert_clean(app)
    figures = app.dataframe[0].value
    assert list(figures["figure"]) == ["accuracy", "latency_ms", "lpirc", "mnasnet"]
    assert not any(c["data"][0].get("name") == "accuracy" and c["data"][0].get("type") == "bar" for c in charts_of(app))
    assert "Accuracy per group" not in texts(app.subheader)
    app.sidebar.radio(key="w.page").set_value("Insight").run()
    assert [c["layout"].get("title", {}).get("text") for c in charts_of(app)[:2]] == ["accuracy", "latency_ms"]
    assert "Fairness methods" not in texts(app.subheader)
