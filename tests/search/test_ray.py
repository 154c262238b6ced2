"""``--backend ray`` on a private Ray instance: two trial slots, a killed worker, stop and resume.

Real Ray, real trials (cheap overrides). The worker process to kill is found the way an operator
would: the Ray worker whose process title names the trial (``ray::hwsearch-trial-<n>``), below
this launcher's process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.search.clirun import cli, spawn
from tests.search.scaleutil import (
    CHEAP,
    alive,
    cmdline,
    descendants,
    kill_all,
    trial_states,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

TRIAL_CPUS = f"{(os.cpu_count() or 2) / 2:g}"
"""Half of this machine's CPUs per trial: the private Ray instance has exactly two trial slots."""


def _args(data: Path, trials: int) -> tuple[str, ...]:
    return ("--data", str(data), "--trials", str(trials), "--backend", "ray", "--trial-cpus", TRIAL_CPUS,
            "--latency", "fake", "--out", "runs", *CHEAP)


def _running_trial_worker(launcher: int) -> tuple[int, int] | None:
    for pid in descendants(launcher):
        title = cmdline(pid)
        if title.startswith("ray::hwsearch-trial-"):
            return pid, int(title.split("ray::hwsearch-trial-", 1)[1].split()[0])
    return None


def test_two_slots_and_a_killed_worker_fails_only_its_trial(tiny_data: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    proc = spawn("search.launch", *_args(tiny_data, 4), cwd=tmp_path)
    seen: set[int] = set()
    try:
        def running_worker() -> tuple[int, int] | None:
            assert proc.poll() is None, proc.communicate()[0]
            return _running_trial_worker(proc.pid)

        worker, killed = wait_for(running_worker, 300, "a Ray worker running a trial")
        seen.update(descendants(proc.pid))
        os.kill(worker, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        seen.update(descendants(proc.pid))
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "2 trial(s) at once" in out
    states = {number: (state, attrs) for number, state, attrs in trial_states(url, "esfair")}
    assert states[killed][0] == "FAIL"
    assert states[killed][1]["fail_reason"].startswith("Ray worker failed:"), states[killed][1]
    assert [s for s, _ in states.values()].count("COMPLETE") == 4
    assert [s for s, _ in states.values()].count("FAIL") == 1
    workers = {a["worker"]["pid"] for s, a in states.values() if s == "COMPLETE"}
    assert len(workers) >= 2 and all(a["worker"]["driver"]["pid"] == proc.pid
                                     for s, a in states.values() if s == "COMPLETE")
    assert (tmp_path / "runs" / "esfair" / f"trial_{killed}" / "error.log").exists()
    wait_for(lambda: not alive(p for p in seen if "raylet" in cmdline(p) or "gcs_server" in cmdline(p)), 60,
             "the private Ray instance to stop")
    kill_all(alive(seen))


STOP_CAP = 8
"""Candidates in the stop-and-resume test: enough that the two slots are still busy when the
first trial completes (with a cap of 3 the last trial took 1 s and the search could end between
two polls, before the test saw a RUNNING trial beside a COMPLETE one)."""


def test_stopping_a_ray_search_and_running_it_again_resumes(tiny_data: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}"
    proc = spawn("search.launch", *_args(tiny_data, STOP_CAP), cwd=tmp_path)
    seen: set[int] = set()
    try:
        def one_done_one_running() -> bool:
            assert proc.poll() is None, proc.communicate()[0]
            seen.update(descendants(proc.pid))
            states = [s for _, s, _ in trial_states(url, "esfair")]
            return "COMPLETE" in states and "RUNNING" in states

        wait_for(one_done_one_running, 300, "one COMPLETE and one RUNNING trial", step=0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, out
    assert "terminate called" not in out
    assert "re-run the same command to resume" in out
    before = trial_states(url, "esfair")
    assert "RUNNING" not in [s for _, s, _ in before]
    interrupted = [n for n, s, a in before if s == "FAIL" and a.get("fail_reason", "").startswith("interrupted")]
    assert interrupted
    done_before = {n: a["metrics"]["artifact_sha256"] for n, s, a in before if s == "COMPLETE"}
    time.sleep(1)
    kill_all(alive(seen))

    again = cli("search.launch", *_args(tiny_data, STOP_CAP), cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    after = {n: (s, a) for n, s, a in trial_states(url, "esfair")}
    assert [s for s, _ in after.values()].count("COMPLETE") == STOP_CAP
    for number, sha in done_before.items():
        assert after[number][0] == "COMPLETE" and after[number][1]["metrics"]["artifact_sha256"] == sha
    for number in interrupted:
        assert after[number][0] == "FAIL"
