"""The shared driver loop and the trial budget, with cheap objectives (no torch, no Ray).

Several launchers on one study are modelled by threads, each with its own storage, study and lock
(separate connections, separate lock-file descriptions), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from evaluators.contracts import LatencySettings
from evaluators.errors import HwsearchError
from search import attrs
from search.executors.budget import StudyLock, TrialBudget
from search.executors.local import run_local
from search.executors.ray_executor import make_worker_config
from search.executors.ray_session import RayOptions, probe_address, trial_slots
from search.storage import open_storage
from spaces.registry import get_space


def _cheap_objective(fail_every: int) -> Any:
    space = get_space("esfair")
    lock = threading.Lock()
    count = {"n": 0}

    def objective(trial: Any) -> list[float]:
        candidate = space.sample(trial)
        trial.set_user_attr(attrs.CANDIDATE, candidate.to_params())
        with lock:
            count["n"] += 1
            failing = fail_every and count["n"] % fail_every == 0
        if failing:
            raise RuntimeError("planned failure")
        return [random.random(), random.random(), random.random() * 10]

    return objective


def _launcher(url: str, study_name: str, target: int, jobs: int, fail_every: int, errors: list[BaseException]) -> None:
    try:
        storage = open_storage(url)
        study = optuna.load_study(study_name=study_name, storage=storage)
        lock = StudyLock(url, study_name)
        try:
            run_local(study, TrialBudget(study, storage, lock, target), _cheap_objective(fail_every), jobs=jobs)
        finally:
            lock.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def _race(url: str, study_name: str, *, launchers: int, target: int, fail_every: int = 0) -> list[Any]:
    directions = get_space("esfair").task.directions
    optuna.create_study(study_name=study_name, storage=open_storage(url), directions=directions)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_launcher, args=(url, study_name, target, 2, fail_every, errors))
               for _ in range(launchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False)


def _assert_exact(trials: list[Any], target: int) -> None:
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == target
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == len(trials)
    assert all(t.user_attrs.get(attrs.WORKER) for t in trials)


@pytest.mark.parametrize("fail_every", [0, 4])
def test_three_launchers_on_sqlite_reach_the_target_exactly(tmp_path: Path, fail_every: int) -> None:
    trials = _race(f"sqlite:///{tmp_path / 'db.sqlite'}", "race", launchers=3, target=12, fail_every=fail_every)
    _assert_exact(trials, 12)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert bool(failed) == bool(fail_every)
    assert all(t.user_attrs[attrs.FAIL_REASON] == "RuntimeError: planned failure" for t in failed)


@pytest.mark.postgres
def test_three_launchers_on_postgres_reach_the_target_exactly(pg_url: str) -> None:
    trials = _race(pg_url, "race-pg", launchers=3, target=15, fail_every=5)
    _assert_exact(trials, 15)
    assert StudyLock(pg_url, "race-pg").scope == "database"


def test_trial_slots_follow_cpu_and_gpu_resources() -> None:
    assert trial_slots({"CPU": 2.0}, 1, 0) == 2
    assert trial_slots({"CPU": 16.0, "GPU": 2.0}, 2, 1) == 2
    assert trial_slots({"CPU": 16.0, "GPU": 1.0}, 1, 0.5) == 2
    assert trial_slots({"CPU": 4.0}, 1, 1) == 0
    assert trial_slots({"CPU": 1.0}, 1.5, 0) == 0


def _args(**overrides: Any) -> argparse.Namespace:
    from search.cli import build_parser

    args = build_parser().parse_args(["--backend", "ray", "--data", "rel/data"])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_worker_config_is_absolute_and_trains_on_cuda_only_with_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel" / "data").mkdir(parents=True)
    space = get_space("esfair")

    def config(gpus: float, device: str = "auto") -> Any:
        return make_worker_config(
            _args(train_device=device), space=space, task=space.task, data_spec="rel/data", out_dir=Path("runs"),
            study_name="s", storage_url="sqlite:///runs/hwsearch.db", backend=None, settings=LatencySettings(),
            options=RayOptions(trial_cpus=1.5, trial_gpus=gpus))

    cpu = config(0)
    assert cpu.train_device == "cpu" and cpu.torch_threads == 2
    assert cpu.data_spec == str(tmp_path / "rel" / "data") and cpu.out_dir == str(tmp_path / "runs")
    assert cpu.storage_url == f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    assert config(1).train_device == "auto"
    assert hash(cpu) == hash(config(0))
    assert "sqlite" not in repr(cpu)


def test_bad_ray_addresses_fail_fast_in_one_line() -> None:
    with pytest.raises(HwsearchError, match="is not auto, HOST:PORT"):
        probe_address("nowhere")
    with pytest.raises(HwsearchError, match="cannot reach the Ray cluster at ray://127.0.0.1:9"):
        probe_address("ray://127.0.0.1:9")
    with pytest.raises(HwsearchError, match="--trial-cpus"):
        RayOptions(trial_cpus=0)


def test_callbacks_can_stop_the_loop_as_in_optimize(tmp_path: Path) -> None:
    from search.progress import FailureGuard

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="broken", storage=storage, directions=get_space("esfair").task.directions)
    guard = FailureGuard(limit=3)

    def broken(trial: Any) -> list[float]:
        raise ValueError("no data\nsecond line")

    run_local(study, TrialBudget(study, storage, StudyLock(url, "broken"), 10), broken, jobs=1, callbacks=[guard])
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert guard.tripped and "ValueError: no data" in guard.tripped
    assert all(t.user_attrs[attrs.FAIL_REASON] == "ValueError: no data" for t in trials)


def test_executor_modules_load_no_heavy_library() -> None:
    probe = ("import sys, json; import search.executors.dispatch, search.executors.ray_executor, "
             "search.executors.ray_session, search.executors.ray_worker, search.executors.local; "
             "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    heavy = {"torch", "ray", "onnxruntime", "timm", "streamlit"}
    assert [m for m in json.loads(out.splitlines()[-1]) if m.split(".")[0] in heavy] == []


def test_unreachable_ray_address_is_one_line_and_stores_nothing(tiny_data: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HWSEARCH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "search.launch", "--backend", "ray", "--ray-address", "ray://127.0.0.1:9",
         "--data", str(tiny_data), "--out", "runs", "--latency", "fake"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [line for line in result.stderr.splitlines() if line.strip()], result.stderr
    assert "cannot reach the Ray cluster at ray://127.0.0.1:9" in errors[0] and "fix:" in errors[0]
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}") == []


def test_a_trial_that_cannot_start_fails_with_its_reason(tmp_path: Path) -> None:
    from search.executors.driver import run_trials
    from search.executors.local import ThreadSlots

    class FirstStartFails(ThreadSlots):
        failed = False

        def start(self, trial: Any) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("cannot sample")
            super().start(trial)

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="start", storage=storage, directions=get_space("esfair").task.directions)
    run_trials(study, FirstStartFails(_cheap_objective(0), 1), TrialBudget(study, storage, StudyLock(url, "start"), 2),
               poll_s=0.01)
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs[attrs.FAIL_REASON] == "RuntimeError: cannot sample"


def test_ray_worker_trains_on_the_gpu_ray_gave_it_else_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from search.executors.ray_worker import _train_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _train_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _train_device("auto") == "cpu" and _train_device("cpu") == "cpu"
    with pytest.raises(HwsearchError, match="sees no GPU"):
        _train_device("cuda")
