"""AppTest runs of every page against the seeded temp-file study, error states and live refresh."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import optuna
from dashboard_seed import _Writer
from streamlit.testing.v1 import AppTest

from dashboard.views.fleet import NO_FLEET


def _open(app: AppTest, page: str, study: str = "esfair-demo") -> AppTest:
    app.run()
    _assert_clean(app)
    app.sidebar.selectbox(key="w.study").set_value(study)
    app.sidebar.radio(key="w.page").set_value(page).run()
    _assert_clean(app)
    return app


def _assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def _charts(app: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def _trace_names(chart: dict[str, Any]) -> list[str]:
    return [trace.get("name", "") for trace in chart["data"]]


def _texts(elements) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(str(e.value) for e in elements)


def test_studies_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = app_for(seeded_db.url).run()
    _assert_clean(app)
    assert app.header[0].value == "Studies"
    table = app.dataframe[0].value.set_index("study")
    assert set(table.index) == {"esfair-demo", "esfair-local"}
    demo = table.loc["esfair-demo"]
    assert (demo["fail"], demo["running"], demo["pruned"], demo["complete"]) == (2, 1, 1, 21)
    assert demo["latency"] == "FAKE" and table.loc["esfair-local", "latency"] == "local"
    assert demo["space"] == "esfair" and demo["device"] == "fake"
    assert demo["best accuracy"] > 0.5 and demo["pareto"] > 0
    assert "FAKE" in _texts(app.warning) and "esfair-demo" in _texts(app.warning)


def test_pareto_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = _open(app_for(seeded_db.url), "Pareto")
    assert app.header[0].value == "Pareto front — esfair-demo"
    assert "FAKE latency" in _texts(app.warning)
    charts = _charts(app)
    assert len(charts) == 5  # three projections, 3-D, hypervolume
    first = charts[0]
    names = _trace_names(first)
    assert {"dominated", "infeasible (over budget)", "baseline: esfair-winner-mobileone-s0"} <= set(names)
    assert any(n.startswith("Pareto front: backbone=") for n in names)
    assert "FAKE" in first["layout"]["xaxis"]["title"]["text"]
    assert charts[3]["data"][0]["type"] == "scatter3d"
    assert _trace_names(charts[4]) == ["hypervolume"]
    app.selectbox(key="w.colour_by").set_value("quant").run()
    _assert_clean(app)
    assert any(n.startswith("Pareto front: quant=") for n in _trace_names(_charts(app)[0]))
    pareto_table = app.dataframe[0].value
    assert set(pareto_table["number"]) and pareto_table["accuracy"].notna().all()


def test_trial_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = _open(app_for(seeded_db.url), "Trial")
    app.selectbox(key="w.trial.esfair-demo").set_value(demo.artifact_trial).run()
    _assert_clean(app)
    assert "Measured by: FAKE latency (not measured)" in _texts(app.warning)
    names = [_trace_names(c) for c in _charts(app)]
    groups = next(c for c in _charts(app) if c["data"][0].get("name") == "accuracy")
    assert "dark (minority)" in groups["data"][0]["x"]
    assert any(c["data"][0]["type"] == "heatmap" for c in _charts(app))
    assert ["min", "median", "mean", "p90"] in names
    assert app.get("download_button"), "artifact download offered"
    code = _texts(app.code)
    assert f"--trial {demo.artifact_trial}" in code and "python -m search.export" in code
    assert f"--storage sqlite:///{seeded_db.path}" in code and "--study esfair-demo" in code
    assert "sha256 matches" in _texts(app.caption)
    params = app.dataframe[0].value.set_index("parameter")["value"]
    assert {"backbone", "resolution", "quant", "prune_ratio", "loss_kd"} <= set(params.index)


def test_trial_page_untrained_and_failed(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = _open(app_for(seeded_db.url), "Trial")
    app.selectbox(key="w.trial.esfair-demo").set_value(demo.infeasible[0]).run()
    assert not app.exception
    assert "was not trained" in _texts(app.info) and "budget" in _texts(app.info)
    app.selectbox(key="w.trial.esfair-demo").set_value(demo.failed[0]).run()
    assert not app.exception
    assert "failed: RuntimeError" in _texts(app.error)


def test_insight_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = _open(app_for(seeded_db.url), "Insight")
    app.selectbox(key="w.evaluator").set_value("ped-anova").run()
    _assert_clean(app)
    charts = _charts(app)
    titles = [c["layout"].get("title", {}).get("text") for c in charts[:3]]
    assert titles == ["accuracy", "fairness", "latency_ms"]
    assert "resolution" in charts[2]["data"][0]["y"]
    effects = charts[3:]
    assert len(effects) == 3 and effects[0]["layout"]["xaxis"]["title"]["text"] == "quant"
    app.selectbox(key="w.dimension").set_value("resolution").run()
    _assert_clean(app)
    assert _charts(app)[3]["layout"]["xaxis"]["title"]["text"] == "resolution"


def test_fleet_page_without_tables(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = _open(app_for(seeded_db.url), "Fleet")
    assert NO_FLEET in _texts(app.info)


def test_fleet_page_with_tables(app_for, fresh_db) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(fresh_db.path) as db:
        db.execute("CREATE TABLE hwsearch_agents (agent_id TEXT, device TEXT, last_seen TIMESTAMP)")
        db.execute("INSERT INTO hwsearch_agents VALUES ('pi-7', 'Raspberry Pi 4 Model B', '2026-01-01 10:00')")
        db.execute("CREATE TABLE hwsearch_jobs (id INTEGER, status TEXT, agent_id TEXT, created_at TIMESTAMP)")
        db.executemany("INSERT INTO hwsearch_jobs VALUES (?, ?, ?, ?)", [
            (1, "pending", None, "2026-01-01"), (2, "done", "pi-7", "2026-01-01"), (3, "failed", "pi-7", "2026-01-02")])
    app = _open(app_for(fresh_db.url), "Fleet")
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["agents"], metrics["queue depth"], metrics["recent failures"]) == ("1", "1", "1")
    agents = app.dataframe[0].value
    assert agents.loc[0, "agent"] == "pi-7" and agents.loc[0, "jobs done"] == 1


def test_error_states(app_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "absent" / "hwsearch.db"
    app = app_for(f"sqlite:///{missing}").run()
    assert not app.exception and "no database file" in _texts(app.error)
    assert not missing.exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01 definitely not sqlite" * 10)
    app = app_for(f"sqlite:///{garbage}").run()
    assert not app.exception and "not an SQLite database" in _texts(app.error)
    empty = tmp_path / "empty.db"
    empty.touch()
    app = app_for(f"sqlite:///{empty}").run()
    assert not app.exception and not app.error and "no studies yet" in _texts(app.info)
    app = app_for("not a url").run()
    assert not app.exception and "not a database URL" in _texts(app.error)


def test_default_url_and_optuna_db_without_studies(app_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for("").run()
    assert not app.exception and "runs/hwsearch.db" in _texts(app.error)
    assert not (tmp_path / "runs").exists()
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    optuna.storages.RDBStorage(url).engine.dispose()
    app = app_for(url).run()
    assert not app.exception and "no studies yet" in _texts(app.info)


def test_live_refresh_keeps_selections(app_for, fresh_db) -> None:  # type: ignore[no-untyped-def]
    app = _open(app_for(fresh_db.url), "Pareto")
    assert app.sidebar.toggle(key="w.live").value is True
    app.selectbox(key="w.colour_by").set_value("quant").run()
    before = _texts(app.caption)
    study = optuna.load_study(study_name="esfair-demo", storage=fresh_db.url)
    writer = _Writer(study, fresh_db.out_root / "esfair-demo", fake=True, seed=9)
    writer.add(fixed={"backbone": "lcnet", "width": 0.35, "resolution": 64, "quant": "fp32", "prune_ratio": 0.0})
    app.run()
    _assert_clean(app)
    assert app.selectbox(key="w.colour_by").value == "quant"
    assert app.sidebar.selectbox(key="w.study").value == "esfair-demo"
    assert "25 trials in all" in before and "26 trials in all" in _texts(app.caption)
    app.sidebar.radio(key="w.page").set_value("Trial").run()
    app.sidebar.radio(key="w.page").set_value("Pareto").run()
    _assert_clean(app)
    assert app.selectbox(key="w.colour_by").value == "quant"
