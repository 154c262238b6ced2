"""A real search (``python -m search.launch``) over ``https://`` with a throwaway CA: two agents enrol,
one is revoked mid-search; its next request is refused and the other measures every remaining trial."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

from search import attrs
from tests.search.clirun import TINY_ARGS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TRIALS = 3


def test_a_search_over_https_survives_revoking_one_of_two_agents(fleet: Any, tiny_data: Path, tmp_path: Path) -> None:
    coordinator = fleet.coordinator(tls=True)
    doomed, steady = (fleet.agent(coordinator.url, "searchbox", coordinator=coordinator) for _ in range(2))
    doomed_id, steady_id = doomed.agent_id(), steady.agent_id()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HWSEARCH_FLEET_TOKEN": fleet.token,
           "HWSEARCH_FLEET_CA": str(coordinator.ca)}
    env.pop("HWSEARCH_STORAGE", None)
    search = subprocess.Popen(
        [sys.executable, "-m", "search.launch", "--data", str(tiny_data), "--trials", str(TRIALS), "--out", "runs",
         "--latency", "remote", "--device", "searchbox", "--fleet", coordinator.url, "--fleet-timeout", "300",
         "--override", "loss_kd=0", *TINY_ARGS],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        client = fleet.client(coordinator)
        fleet.wait_for(lambda: client.stats()["jobs"].get("done", 0) >= 1 or search.poll() is not None, 600,
                       "the first latency job of the search")
        assert search.poll() is None, search.communicate()[0][-3000:]
        revoked = subprocess.run(
            [sys.executable, "-m", "evaluators.fleet", "agents", "revoke", doomed_id, "--storage", coordinator.storage],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert revoked.returncode == 0, revoked.stderr
        assert doomed.wait(120) == 2, "the revoked agent's next request is refused and it exits 2"
        out = search.communicate(timeout=900)[0]
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    assert search.returncode == 0, out[-4000:]
    assert f"agent {doomed_id}'s credential was revoked" in doomed.log()
    study = optuna.load_study(study_name="esfair", storage=f"sqlite:///{tmp_path / 'runs' / 'hwsearch.db'}")
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    assert len(complete) == TRIALS, "0 lost"
    for trial in complete:
        latency = trial.user_attrs[attrs.LATENCY]
        assert latency["backend"] == "remote" and latency["agent"] in (doomed_id, steady_id)
    jobs = client.jobs(limit=1000)
    assert {job["state"] for job in jobs} == {"done"}, jobs
    agents = {agent["id"]: agent for agent in client.agents()}
    done_by = {agent_id: sum(job["result"]["agent"] == agent_id for job in jobs) for agent_id in agents}
    assert {agent_id: agent["jobs_done"] for agent_id, agent in agents.items()} == done_by, "0 duplicated"
    assert done_by[doomed_id] == doomed.log().count(": done, median")
    assert agents[doomed_id]["revoked"] and steady.process.poll() is None
