"""The search benchmarks: their ``--quick`` modes end to end, and the hypervolume convention."""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_HV = 1.1 ** 3


def _bench_module(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` (the scripts import their sibling ``common``)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _run(script: str, *args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env=env, timeout=timeout)


def test_hypervolume_convention() -> None:
    common = _bench_module("common")
    assert common.hypervolume([(0.0, 0.0, 0.0)]) == pytest.approx(MAX_HV)
    assert common.hypervolume([(1.0, 1.0, 1.0)]) == pytest.approx(0.1 ** 3)
    assert common.hypervolume([(1.2, 0.0, 0.0)]) == 0.0
    assert common.hypervolume([]) == 0.0
    metrics = {"accuracy": 0.8, "fairness": {"fairness_part": 1 / 6}, "latency": {"median_ms": 3.0}}
    assert common.esfair_losses(metrics, 6.0) == pytest.approx((0.2, 0.5, 0.5))
    assert common.non_dominated([(0, 1, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]) == [0, 1, 3]


@pytest.mark.parametrize("name", ["dtlz2", "wfg4"])
def test_true_front_reaches_the_analytic_hypervolume(name: str) -> None:
    from pymoo.util.ref_dirs import get_reference_directions

    kf = _bench_module("known_fronts")
    front = kf.KnownFront.make(name)
    dirs = get_reference_directions("das-dennis", 3, n_partitions=40)
    points = front.problem.pareto_front(dirs) / front.nadir
    ratio = _bench_module("common").hypervolume(points) / kf.SPHERE_FRONT_HV
    assert 0.9 < ratio <= 1.0 + 1e-9
    assert front.constraint(np.full(8, front.optimum)) < 0


@pytest.mark.slow
def test_known_fronts_quick(tmp_path: Path) -> None:
    result = _run("known_fronts.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((tmp_path / "known_fronts-30.json").read_text())
    assert set(data["arms"]) == set(_bench_module("known_fronts").ARMS)
    for run in data["runs"].values():
        assert len(run["ratios"]) == 2
        assert all(math.isfinite(r) and 0.0 <= r <= 1.0 for r in run["ratios"])
    table = (tmp_path / "known_fronts-30.md").read_text()
    assert all(f"| {arm} " in table for arm in data["arms"])
    assert (tmp_path / "known_fronts-30.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_search_efficiency_quick(tmp_path: Path) -> None:
    result = _run("search_efficiency.py", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "search_efficiency_quick.png").read_bytes()[:8] == PNG_MAGIC
    text = (tmp_path / "search_efficiency_quick.md").read_text()
    for section in ("## 1.", "## 3.", "## 4."):
        assert section in text
    data = json.loads((tmp_path / "search_efficiency_quick.json").read_text())
    assert 0.0 < data["best_hv"] <= MAX_HV
    assert {r["arm"] for r in data["runs"]} == {"hwsearch", "random", "optuna-nsga2", "optuna-tpe"}
    assert any(run["points"] for run in data["runs"]), "no run finished a trial"
    for run in data["runs"]:
        for p in run["points"]:
            if p["losses"] is not None:
                assert all(math.isfinite(v) and v >= 0.0 for v in p["losses"])
    hv_rows = re.findall(r"^\| (hwsearch|random|optuna-nsga2|optuna-tpe) +\| \S+ +\| \S+ +\| ([0-9.]+) ", text, re.MULTILINE)
    assert len(hv_rows) == 4
    assert all(0.0 <= float(hv) <= MAX_HV for _, hv in hv_rows)
    recipes = re.findall(r"^\| (esfair-\S+|mobilenetv3-\S+) +\| ([0-9.]+) +\| ([0-9.]+) +\| ([0-9.]+) ", text, re.MULTILINE)
    assert len(recipes) == 3
    assert all(0.0 <= float(a) <= 1.0 and 0.0 <= float(f) <= 1 / 3 + 1e-9 and float(lat) > 0 for _, a, f, lat in recipes)
