"""The benches' shared helpers (fronts and hypervolume through ``search.front``) and ``known_fronts``.

``_bench_module`` and ``_run`` are the helpers every bench test uses: ``_run`` starts a bench's
``--quick`` form in a subprocess with a private compute-lock folder (so other processes training on
a shared CI machine do not hold up its latency measurements, nor it theirs) and OpenMP's passive
wait policy (busy-waiting torch threads slow each other down many times over on a loaded machine;
the smoke tests check the plumbing, not speed).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from search import attrs
from search.front import FrontSpec, hypervolume, points_from_trials

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bench_module(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` (the scripts import their sibling ``common``)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _run(script: str, *args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HWSEARCH_COMPUTE_LOCK_DIR": str(cwd / "compute-lock"),
           "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("HWSEARCH_STORAGE", None)
    return subprocess.run([sys.executable, str(BENCH / script), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env=env, timeout=timeout)


def _metrics(accuracy: float, fairness: float, latency: float) -> dict[str, Any]:
    return {"accuracy": accuracy, "fairness": {"fairness_part": fairness},
            "latency": {"median_ms": latency, "ci_low_ms": latency * 0.95, "ci_high_ms": latency * 1.05},
            "intervals": {"accuracy": [accuracy - 0.04, accuracy + 0.04],
                          "fairness.fairness_part": [fairness - 0.02, fairness + 0.02]}}


def _esfair_study() -> Any:
    """An in-memory esfair study: three trained trials (one dominated), one screened out, one
    stopped at a lower rung; test figures for the two front members."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from spaces.registry import get_space

    task = get_space("esfair").task
    study = optuna.create_study(directions=task.directions)
    study.set_user_attr(attrs.STUDY_TASK, task.record())
    for acc, fair, lat in ((0.6, 0.30, 2.0), (0.5, 0.32, 1.0), (0.4, 0.20, 3.0)):
        study.add_trial(create_trial(values=[acc, fair, lat], user_attrs={
            attrs.TRAINED: True, attrs.FEASIBLE: True, attrs.METRICS: _metrics(acc, fair, lat)}))
    study.add_trial(create_trial(values=[0.0, 0.0, 9.0], user_attrs={attrs.TRAINED: False, attrs.FEASIBLE: False}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={attrs.TRAINED: True, attrs.rung_key(0): {}}))
    study.set_user_attr(attrs.test_metrics_key(0), _metrics(0.55, 0.28, 2.0))
    study.set_user_attr(attrs.test_metrics_key(1), _metrics(0.45, 0.33, 1.0))
    return study


def test_study_hypervolume_is_search_front_on_both_splits() -> None:
    common = _bench_module("common")
    study = _esfair_study()
    spec = FrontSpec.from_record(study.user_attrs[attrs.STUDY_TASK])
    val = points_from_trials(study.get_trials(), spec)
    assert common.study_points(study, "val") == val
    assert common.study_hypervolume(study, "val") == pytest.approx(hypervolume(val, spec))
    assert hypervolume(val, spec) > 0
    test = common.study_points(study, "test")
    assert [p.number for p in test] == [0, 1]
    assert test[0].values == pytest.approx((0.55, 0.28, 2.0))
    assert test[0].half_widths == pytest.approx((0.04, 0.02, 0.1))
    assert common.study_hypervolume(study, "test") == pytest.approx(hypervolume(test, spec))
    assert common.study_hypervolume(study, "test") < common.study_hypervolume(study, "val")
    assert common.outcome_counts(study.get_trials()) == {"top": 3, "stopped": 1, "screened": 1, "failed": 0,
                                                         "other": 0}
    assert common.rung_counts(study.get_trials()) == {0: 1}


@pytest.mark.parametrize("name", ["dtlz2", "wfg4"])
def test_true_front_reaches_the_analytic_hypervolume(name: str) -> None:
    from pymoo.util.ref_dirs import get_reference_directions

    kf = _bench_module("known_fronts")
    front = kf.KnownFront.make(name)
    dirs = get_reference_directions("das-dennis", 3, n_partitions=40)
    points = front.problem.pareto_front(dirs) / front.nadir
    ratio = kf.hv_ratio([(True, list(p)) for p in points])
    assert 0.9 < ratio <= 1.0 + 1e-9
    assert kf.hv_ratio([(True, [0.0, 0.0, 0.0]), (False, [0.0, 0.0, 0.0])]) == pytest.approx(1.1 ** 3 / (1.1 ** 3 - math.pi / 6))
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
