"""The launcher on a real PostgreSQL server: the study, the fleet tables, several launchers at once.

The server is a throwaway cluster on 127.0.0.1 (``tests/pg.py``), installed by
``scripts/install_test_services.sh``; the tests skip, saying why, only where it cannot run.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy

from evaluators.db import make_engine
from tests.search.clirun import cli, spawn
from tests.search.scaleutil import CHEAP, SCREENED_OUT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FLEET_TABLES = {"hwsearch_agents", "hwsearch_artifacts", "hwsearch_jobs", "hwsearch_latency_rounds"}


def test_launcher_with_two_jobs_on_postgres_keeps_study_and_fleet_tables_there(
    pg_url: str, tiny_data: Path, tmp_path: Path,
) -> None:
    args = ("--storage", pg_url, "--study", "pg-single", "--data", str(tiny_data), "--trials", "2", "--jobs", "2",
            "--latency", "fake", "--out", "runs", *CHEAP)
    first = cli("search.launch", *args, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    study = optuna.load_study(study_name="pg-single", storage=pg_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(t.user_attrs["trained"] for t in study.trials)
    first, second = study.trials
    assert first.datetime_start < second.datetime_complete and second.datetime_start < first.datetime_complete, \
        "--jobs 2 should run both trials at once"
    assert not (tmp_path / "runs" / "hwsearch.db").exists()

    engine = make_engine(pg_url)
    assert engine.dialect.name == "postgresql"
    assert FLEET_TABLES <= set(sqlalchemy.inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT count(*) FROM hwsearch_latency_rounds")).scalar() >= 1

    again = cli("search.launch", *args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 candidate(s) evaluated" in again.stdout and "cap 2" in again.stdout
    assert len(optuna.load_study(study_name="pg-single", storage=pg_url).trials) == 2


def test_three_launchers_on_one_study_make_exactly_the_target(pg_url: str, tiny_data: Path, tmp_path: Path) -> None:
    args = ("--storage", pg_url, "--study", "pg-shared", "--data", str(tiny_data), "--trials", "5",
            "--latency", "fake", "--out", "runs", *SCREENED_OUT)
    launchers = [spawn("search.launch", *args, "--seed", str(seed), cwd=tmp_path) for seed in range(3)]
    outputs = []
    try:
        for proc in launchers:
            outputs.append(proc.communicate(timeout=600)[0])
    finally:
        for proc in launchers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in launchers] == [0, 0, 0], "\n".join(outputs)
    trials = optuna.load_study(study_name="pg-shared", storage=pg_url).trials
    assert [t.state.name for t in trials].count("COMPLETE") == 5
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.user_attrs["trained"] is False and t.user_attrs["feasible"] is False for t in trials)
