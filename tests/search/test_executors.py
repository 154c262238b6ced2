"""The shared driver loop, the trial cap and successive halving, with cheap jobs (no torch, no Ray).

Several launchers on one study are modelled by threads, each with its own storage, study and lock
(separate connections, separate lock-file descriptions), on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
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
from search.executors.budget import StudyLock
from search.executors.ray_executor import make_worker_config
from search.executors.ray_session import RayOptions, probe_address, trial_slots
from search.storage import open_storage
from spaces.registry import get_space
from tests.search.cheap import CheapSlots, cheap_driver


def _launcher(url: str, study_name: str, cap: int, out: Path, fail_every: int, errors: list[BaseException]) -> None:
    try:
        storage = open_storage(url)
        study = optuna.load_study(study_name=study_name, storage=storage)
        fail = (lambda job: job.number % fail_every == fail_every - 1) if fail_every else None
        cheap_driver(study, storage, url, out, cap=cap, slots=CheapSlots(2, fail=fail)).run()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def _race(url: str, study_name: str, out: Path, *, launchers: int, cap: int, fail_every: int = 0) -> list[Any]:
    directions = get_space("esfair").task.directions
    optuna.create_study(study_name=study_name, storage=open_storage(url), directions=directions)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_launcher, args=(url, study_name, cap, out, fail_every, errors))
               for _ in range(launchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return optuna.load_study(study_name=study_name, storage=url).get_trials(deepcopy=False)


def _assert_exact(trials: list[Any], cap: int) -> None:
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == cap
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == len(trials)
    assert all(t.user_attrs.get(attrs.WORKER) for t in trials)


@pytest.mark.parametrize("fail_every", [0, 4])
def test_three_launchers_on_sqlite_reach_the_cap_exactly(tmp_path: Path, fail_every: int) -> None:
    trials = _race(f"sqlite:///{tmp_path / 'db.sqlite'}", "race", tmp_path, launchers=3, cap=12, fail_every=fail_every)
    _assert_exact(trials, 12)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert bool(failed) == bool(fail_every)
    assert all(t.user_attrs[attrs.FAIL_REASON] == "RuntimeError: planned failure" for t in failed)


@pytest.mark.postgres
def test_three_launchers_on_postgres_reach_the_cap_exactly(pg_url: str, tmp_path: Path) -> None:
    trials = _race(pg_url, "race-pg", tmp_path, launchers=3, cap=15, fail_every=5)
    _assert_exact(trials, 15)
    assert StudyLock(pg_url, "race-pg").scope == "database"


def _study(tmp_path: Path, name: str) -> tuple[str, Any, Any]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name=name, storage=storage, directions=get_space("esfair").task.directions,
                                sampler=optuna.samplers.RandomSampler(seed=7))
    return url, storage, study


def test_successive_halving_promotes_the_top_third_of_each_rung(tmp_path: Path) -> None:
    url, storage, study = _study(tmp_path, "ladder")
    cheap_driver(study, storage, url, tmp_path, cap=27, slots=CheapSlots(1), rungs=(1, 3, 9)).run()
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 27
    reached = {r: sum(attrs.rung_key(r) in t.user_attrs for t in trials) for r in range(3)}
    assert reached[0] == 27 and 0 < reached[2] < reached[1] <= 27 // 2, reached
    for t in trials:
        records = attrs.rung_records(t.user_attrs)
        assert sorted(records) == list(range(len(records))), "rungs are run in order"
        if t.state == TrialState.COMPLETE:
            assert sorted(records) == [0, 1, 2] and t.values[0] == pytest.approx(records[2]["values"][0])
        else:
            last = records[max(records)]
            assert t.user_attrs[attrs.STOPPED] and not last["decision"]["promote"]
            assert last["decision"]["position"] >= last["decision"]["quota"]
        for rung, record in records.items():
            if rung < max(records):
                assert record["decision"]["promote"] and record["decision"]["position"] < record["decision"]["quota"]


def test_a_stop_request_fails_every_owned_trial_and_raises_with_its_exit_code(tmp_path: Path) -> None:
    from search.stop import SearchStopped, StopSignal

    url, storage, study = _study(tmp_path, "stop")
    stop = StopSignal()
    started: list[int] = []

    def on_start(job: Any) -> None:
        started.append(job.number)
        if len(started) == 2:
            stop.request(signal.SIGTERM)

    slots = CheapSlots(2, delay_s=5.0, started=on_start)
    with pytest.raises(SearchStopped) as info:
        cheap_driver(study, storage, url, tmp_path, cap=None, slots=slots, stop=stop).run()
    assert info.value.exit_code == 143
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 2 and all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs[attrs.FAIL_REASON].startswith("interrupted: SIGTERM") for t in trials)


def test_trial_slots_follow_cpu_and_gpu_resources() -> None:
    assert trial_slots({"CPU": 2.0}, 1, 0) == 2
    assert trial_slots({"CPU": 16.0, "GPU": 2.0}, 2, 1) == 2
    assert trial_slots({"CPU": 16.0, "GPU": 1.0}, 1, 0.5) == 2
    assert trial_slots({"CPU": 4.0}, 1, 1) == 0
    assert trial_slots({"CPU": 1.0}, 1.5, 0) == 0


def _config(tmp_path: Path, **overrides: Any) -> Any:
    from search.cli import build_parser
    from search.config import SearchConfig

    args = build_parser().parse_args(["--backend", "ray", "--data", "rel/data", "--trial-cpus", "1.5"])
    for key, value in overrides.items():
        setattr(args, key, value)
    return SearchConfig.from_args(args, environ={})


def test_worker_config_is_absolute_and_trains_on_cuda_only_with_gpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evaluators.latency import make_latency_backend

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel" / "data").mkdir(parents=True)
    task = get_space("esfair").task.with_settings(floors={"accuracy": 0.35})
    backend = make_latency_backend("fake")

    def config(gpus: float, device: str = "auto") -> Any:
        return make_worker_config(_config(tmp_path, trial_gpus=gpus, train_device=device), task=task,
                                  data_spec="rel/data", backend=backend, settings=LatencySettings())

    cpu = config(0)
    assert cpu.train_device == "cpu" and cpu.torch_threads == 2
    assert cpu.data_spec == str(tmp_path / "rel" / "data") and cpu.out_dir == str(tmp_path / "runs")
    assert cpu.storage_url == f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    assert cpu.floors == (("accuracy", 0.35),) and cpu.latency_backend == "fake"
    assert make_latency_backend(cpu.latency_backend, cpu.latency_options).name == "fake"
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

    url, storage, study = _study(tmp_path, "broken")
    guard = FailureGuard(limit=3)
    slots = CheapSlots(1, fail=lambda job: True)
    cheap_driver(study, storage, url, tmp_path, cap=10, slots=slots, callbacks=[guard]).run()
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    assert guard.tripped and "RuntimeError: planned failure" in guard.tripped


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
    class FirstStartFails(CheapSlots):
        failed = False

        def start(self, job: Any) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("cannot start")
            super().start(job)

    url, storage, study = _study(tmp_path, "start")
    cheap_driver(study, storage, url, tmp_path, cap=2, slots=FirstStartFails(1)).run()
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs[attrs.FAIL_REASON] == "RuntimeError: cannot start"


def test_ray_worker_trains_on_the_gpu_ray_gave_it_else_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from search.executors.ray_worker import _train_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _train_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _train_device("auto") == "cpu" and _train_device("cpu") == "cpu"
    with pytest.raises(HwsearchError, match="sees no GPU"):
        _train_device("cuda")


def _too_costly_above_64_px(job: Any) -> Any:
    """Cheap figures, except that a first rung with a cost limit is too costly above 64 px."""
    import dataclasses

    from tests.search.cheap import cheap_outcome

    outcome = cheap_outcome(job)
    if job.rung.max_train_s is not None and job.candidate.resolution > 64:
        probe = {"projected_s": 10 * job.rung.max_train_s, "limit_s": job.rung.max_train_s, "step_s": 0.5}
        return dataclasses.replace(outcome, metrics=None, checkpoint=None, too_costly=probe)
    return outcome


def test_a_first_rung_too_costly_for_the_budget_is_screened_out_and_the_rest_go_on(tmp_path: Path) -> None:
    url, storage, study = _study(tmp_path, "costly")
    limits: list[tuple[int, float | None]] = []
    slots = CheapSlots(1, outcome=_too_costly_above_64_px, started=lambda job: limits.append(
        (job.rung.rung, job.rung.max_train_s)))
    cheap_driver(study, storage, url, tmp_path, cap=12, slots=slots, rungs=(1, 3), budget_s=100.0,
                 first_rung_share=0.1).run()
    assert {limit for rung, limit in limits if rung == 0} == {10.0}
    assert {limit for rung, limit in limits if rung > 0} <= {None}
    trials = study.get_trials(deepcopy=False)
    costly = [t for t in trials if attrs.TOO_COSTLY in t.user_attrs]
    assert costly and len(costly) < len(trials)
    for t in costly:
        assert t.state == TrialState.COMPLETE and t.user_attrs[attrs.FEASIBLE] is False
        assert not t.user_attrs[attrs.TRAINED] and attrs.rung_key(0) not in t.user_attrs
        assert t.user_attrs[attrs.CONSTRAINT] and min(t.user_attrs[attrs.CONSTRAINT]) >= 1.0, "infeasible to TPE"
        assert t.user_attrs[attrs.INFEASIBLE_REASON].startswith("too costly for this budget: its first rung would "
                                                                "train ~100 s, over 10 s")
    assert any(attrs.rung_key(1) in t.user_attrs for t in trials), "cheaper candidates still climb the ladder"


def test_a_one_rung_search_has_no_first_rung_cost_limit(tmp_path: Path) -> None:
    url, storage, study = _study(tmp_path, "one-rung")
    limits: list[float | None] = []
    slots = CheapSlots(1, outcome=_too_costly_above_64_px, started=lambda job: limits.append(job.rung.max_train_s))
    cheap_driver(study, storage, url, tmp_path, cap=4, slots=slots, rungs=(2,), first_rung_share=0.1).run()
    assert limits == [None] * 4
    assert not any(attrs.TOO_COSTLY in t.user_attrs for t in study.get_trials(deepcopy=False))
