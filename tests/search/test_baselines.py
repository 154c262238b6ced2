"""--baselines enqueues the field's recipes first (after the space's start point), once per study, tagged on the
trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search import attrs
from tests.search.clirun import TINY_ARGS, cli

pytestmark = pytest.mark.slow


def test_baselines_run_first_and_only_once(tiny_data: Path, tmp_path: Path) -> None:
    args = ("--data", str(tiny_data), "--latency", "fake", "--out", "runs", "--baselines", *TINY_ARGS)
    first = cli("search.launch", *args, "--trials", "3", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "baselines enqueued" in first.stdout and "start point enqueued: mobilenetv3-small-192" in first.stdout
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    study = optuna.load_study(study_name="esfair", storage=url)
    assert study.trials[0].user_attrs[attrs.START_POINT] == "mobilenetv3-small-192"
    names = [t.user_attrs.get(attrs.BASELINE) for t in study.trials[1:]]
    assert names == ["esfair-sample-mobilenetv2", "esfair-winner-mobileone-s0", "mobilenetv3-small-fp32"]
    winner = study.trials[2].user_attrs[attrs.CANDIDATE]
    assert winner["backbone"] == "mobileone_s0" and winner["ema"] and winner["loss_kd"] > 0
    second = cli("search.launch", *args, "--trials", "4", cwd=tmp_path)
    assert second.returncode == 0 and "baselines enqueued" not in second.stdout
    assert "start point enqueued" not in second.stdout, "a resumed study keeps its course"
    study = optuna.load_study(study_name="esfair", storage=url)
    assert sum(1 for t in study.trials if t.user_attrs.get(attrs.BASELINE)) == 3
