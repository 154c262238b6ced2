"""AppTest runs of every page against the seeded studies, error states and live refresh."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
from dashboard_checks import (
    PAGES,
    assert_clean,
    assert_lpirc_pages,
    charts_of,
    choose_trial,
    open_page,
    texts,
    trace_names,
)
from dashboard_seed import append_trial

from dashboard.pareto import FRONT_STOPPED
from dashboard.views.fleet import NO_FLEET

def test_studies_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = open_page(app_for(seeded_db.url), "Studies")
    assert app.header[0].value == "Studies"
    table = app.dataframe[0].value.set_index("study")
    assert set(table.index) == {"esfair-demo", "esfair-local", "lpirc-demo", "esfair-legacy"}
    row = table.loc["esfair-demo"]
    assert (row["fail"], row["running"], row["pruned"]) == (len(demo.failed), len(demo.running), len(demo.pruned))
    assert row["complete"] == len(demo.complete) + len(demo.screened_out)
    assert row["latency"] == "FAKE" and table.loc["esfair-local", "latency"] == "local"
    assert row["rungs"] == "1 → 3 → 9 epochs, η = 2" and row["budget"] == "412 s of 600 s spent (69%)"
    assert row["pareto"] > row["within noise"] >= 1 and row["best esfair score"] > 0
    assert table.loc["lpirc-demo", "best lpirc score"] > 0 and "best lpirc score" in table.columns
    assert "FAKE" in texts(app.warning) and "esfair-demo" in texts(app.warning)
    assert "Budget and fidelity — esfair-demo" in texts(app.subheader)
    assert "plan: " in texts(app.caption) and "Rungs: 1 → 3 → 9 epochs" in texts(app.caption)
    occupancy = app.dataframe[1].value.set_index("rung")
    assert occupancy.loc[0, "stopped here"] == len(demo.stopped[0])
    assert trace_names(charts_of(app)[0])[:2] == ["promoted", "stopped here"]
    app.sidebar.selectbox(key="w.study").set_value("esfair-legacy").run()
    assert_clean(app)
    assert "predates successive halving" in texts(app.info)


def test_pareto_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = open_page(app_for(seeded_db.url), "Pareto")
    assert app.header[0].value == "Pareto front — esfair-demo"
    assert "FAKE latency" in texts(app.warning)
    charts = charts_of(app)
    assert len(charts) == 5  # three projections, 3-D, hypervolume
    names = trace_names(charts[0])
    assert {"dominated", FRONT_STOPPED, "infeasible (budget or floor)", "baseline: esfair-winner-mobileone-s0",
            "dominated within noise (hover: by which trial)"} <= set(names)
    assert any(n.startswith("Pareto front: backbone=") for n in names)
    assert "FAKE" in charts[0]["layout"]["xaxis"]["title"]["text"]
    assert charts[3]["data"][0]["type"] == "scatter3d" and trace_names(charts[4]) == ["hypervolume"]
    table = app.dataframe[0].value.set_index("number")
    assert {"accuracy", "± accuracy", "SPD", "worst group", "esfair score"} <= set(table.columns)
    assert table.loc[demo.noise_member, "dominated within noise by"] >= 0
    assert "best-score" in " ".join(table["export --pick"]) and "best-score → trial" in texts(app.caption)
    app.selectbox(key="w.colour_by").set_value("rung").run()
    assert_clean(app)
    assert f"{FRONT_STOPPED}: rung=1" in trace_names(charts_of(app)[0])


def test_trial_page_of_a_finisher(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = choose_trial(open_page(app_for(seeded_db.url), "Trial"), "esfair-demo", demo.artifact_trial)
    assert_clean(app)
    assert "Measured by: FAKE latency (not measured)" in texts(app.warning)
    figures = app.dataframe[0].value.set_index("figure")
    assert list(figures.index) == ["accuracy", "fairness", "latency_ms", "SPD", "worst group", "esfair"]
    assert (figures.loc[["accuracy", "latency_ms", "SPD"], "95 % low"] > 0).all()
    metrics = {m.label: m.value for m in app.metric}
    assert "±" in metrics["accuracy"] and "latency_ms (FAKE)" in metrics
    assert "Fairness method: **" in texts(app.caption)
    charts = charts_of(app)
    groups = next(c for c in charts if c["data"][0].get("name") == "accuracy")
    assert "dark (minority)" in groups["data"][0]["x"] and groups["data"][0]["error_y"]["arrayminus"]
    latency = next(c for c in charts if "round medians" in trace_names(c))
    assert latency["data"][1]["error_x"]["array"]  # the median's CI
    assert "95 % CI [" in texts(app.caption) and "in 3 round(s)" in texts(app.caption)
    assert "Rung history" in texts(app.subheader)
    history = next(d.value for d in app.dataframe if "decision" in d.value.columns)
    assert list(history["epochs"]) == [1, 3, 9] and history["decision"].iloc[0].startswith("promoted")
    assert app.get("download_button"), "artifact download offered"
    code = texts(app.code)
    assert f"--trial {demo.artifact_trial}" in code and f"--storage sqlite:///{seeded_db.path}" in code


def test_trial_page_of_stopped_noisy_and_continued_trials(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    demo = seeded_db.demo
    app = open_page(app_for(seeded_db.url), "Trial")
    choose_trial(app, "esfair-demo", demo.stopped[1][0])
    assert "stopped at rung 1 (3 epochs): rung 1:" in texts(app.info) and "never competes" in texts(app.info)
    choose_trial(app, "esfair-demo", demo.noise_member)
    assert "dominated within noise by trial" in texts(app.warning)
    choose_trial(app, "esfair-demo", demo.continuation)
    assert f"Continues interrupted trial {demo.interrupted}" in texts(app.caption)
    assert any(f"trial {demo.interrupted}'s rung" in d.value.to_string() for d in app.dataframe)
    choose_trial(app, "esfair-demo", demo.floor_violator)
    assert "infeasible" in texts(app.warning) and "accuracy floor" in texts(app.warning)
    choose_trial(app, "esfair-demo", demo.screened_out[0])
    assert "was not trained" in texts(app.info) and "budget" in texts(app.info)
    choose_trial(app, "esfair-demo", demo.failed[-1])
    assert "failed: RuntimeError" in texts(app.error)


def test_insight_page(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = open_page(app_for(seeded_db.url), "Insight")
    app.selectbox(key="w.evaluator").set_value("ped-anova").run()
    assert_clean(app)
    charts = charts_of(app)
    assert [c["layout"].get("title", {}).get("text") for c in charts[:3]] == ["accuracy", "fairness", "latency_ms"]
    assert charts[3]["layout"]["xaxis"]["title"]["text"] == "quant"
    assert "Fairness methods: effect on accuracy, minority accuracy and SPD" in texts(app.subheader)
    methods = app.dataframe[-1].value
    assert {"method", "trials", "minority accuracy median", "SPD q75"} <= set(methods.columns)
    assert [c["layout"]["yaxis"]["title"]["text"] for c in charts[-3:]] == ["accuracy", "minority accuracy", "SPD"]
    app.selectbox(key="w.dimension").set_value("resolution").run()
    assert_clean(app)
    assert charts_of(app)[3]["layout"]["xaxis"]["title"]["text"] == "resolution"


def test_every_page_of_the_lpirc_study(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    """A study without groups: its own score columns, and no fairness widgets."""
    assert_lpirc_pages(open_page(app_for(seeded_db.url), "Studies", "lpirc-demo"), "lpirc-demo",
                       seeded_db.lpirc.complete[0])


def test_pages_of_a_study_from_before_rungs(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = open_page(app_for(seeded_db.url), "Studies", "esfair-legacy")
    for page in PAGES:
        app.sidebar.radio(key="w.page").set_value(page).run()
        assert_clean(app)
    app.sidebar.radio(key="w.page").set_value("Trial").run()
    choose_trial(app, "esfair-legacy", seeded_db.studies["esfair-legacy"].stopped[0][0])
    assert "stopped before training: median latency" in texts(app.info)


def test_fleet_page_without_tables(app_for, seeded_db) -> None:  # type: ignore[no-untyped-def]
    app = open_page(app_for(seeded_db.url), "Fleet")
    assert NO_FLEET in texts(app.info)


def test_fleet_page_with_tables(app_for, fresh_db) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(fresh_db.path) as db:
        db.execute("CREATE TABLE hwsearch_agents (agent_id TEXT, device TEXT, last_seen TIMESTAMP)")
        db.execute("INSERT INTO hwsearch_agents VALUES ('pi-7', 'Raspberry Pi 4 Model B', '2026-01-01 10:00')")
        db.execute("CREATE TABLE hwsearch_jobs (id INTEGER, status TEXT, agent_id TEXT, created_at TIMESTAMP)")
        db.executemany("INSERT INTO hwsearch_jobs VALUES (?, ?, ?, ?)", [
            (1, "pending", None, "2026-01-01"), (2, "done", "pi-7", "2026-01-01"), (3, "failed", "pi-7", "2026-01-02")])
    app = open_page(app_for(fresh_db.url), "Fleet")
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["agents"], metrics["queue depth"], metrics["recent failures"]) == ("1", "1", "1")
    agents = app.dataframe[0].value
    assert agents.loc[0, "agent"] == "pi-7" and agents.loc[0, "jobs done"] == 1


def test_error_states(app_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "absent" / "hwsearch.db"
    app = app_for(f"sqlite:///{missing}").run()
    assert not app.exception and "no database file" in texts(app.error)
    assert not missing.exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01 definitely not sqlite" * 10)
    app = app_for(f"sqlite:///{garbage}").run()
    assert not app.exception and "not an SQLite database" in texts(app.error)
    empty = tmp_path / "empty.db"
    empty.touch()
    app = app_for(f"sqlite:///{empty}").run()
    assert not app.exception and not app.error and "no studies yet" in texts(app.info)
    app = app_for("not a url").run()
    assert not app.exception and "not a database URL" in texts(app.error)


def test_default_url_and_optuna_db_without_studies(app_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = app_for("").run()
    assert not app.exception and "runs/hwsearch.db" in texts(app.error)
    assert not (tmp_path / "runs").exists()
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    optuna.storages.RDBStorage(url).engine.dispose()
    app = app_for(url).run()
    assert not app.exception and "no studies yet" in texts(app.info)


def test_live_refresh_keeps_selections(app_for, fresh_db) -> None:  # type: ignore[no-untyped-def]
    total = fresh_db.demo.trials
    app = open_page(app_for(fresh_db.url), "Pareto")
    assert app.sidebar.toggle(key="w.live").value is True
    app.selectbox(key="w.colour_by").set_value("quant").run()
    before = texts(app.caption)
    number = append_trial(fresh_db.url, "esfair-demo", fresh_db.out_root,
                          {"backbone": "lcnet", "width": 0.35, "resolution": 64, "quant": "fp32", "prune_ratio": 0.0},
                          seed=9)
    app.run()
    assert_clean(app)
    assert app.selectbox(key="w.colour_by").value == "quant"
    assert app.sidebar.selectbox(key="w.study").value == "esfair-demo"
    assert f"{total} trials in all" in before and f"{total + 1} trials in all" in texts(app.caption)
    app.sidebar.radio(key="w.page").set_value("Trial").run()
    choose_trial(app, "esfair-demo", number)
    assert "parked waiting for a promotion decision" in texts(app.info) and "rung 0 (1 epoch)" in texts(app.info)
    app.sidebar.radio(key="w.page").set_value("Pareto").run()
    assert_clean(app)
    assert app.selectbox(key="w.colour_by").value == "quant"
