"""The fleet over HTTPS with a throwaway CA: enrolment, per-agent credentials and revocation, with
a real coordinator and real agent processes on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evaluators.contracts import LatencyResult, LatencySettings
from evaluators.errors import LatencyError
from evaluators.latency.remote import RemoteLatencyBackend

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
JOBS = 24


def _revoke(coordinator: Any, agent_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evaluators.fleet", "agents", "revoke", agent_id, "--storage", coordinator.storage],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def _done_count(agent: Any) -> int:
    return agent.log().count(": done, median")


def test_a_revoked_agent_is_locked_out_while_the_other_finishes_every_job(fleet: Any) -> None:
    coordinator = fleet.coordinator(tls=True, lease_seconds=3.0)
    assert coordinator.url.startswith("https://")
    doomed, steady = fleet.agent(coordinator.url, coordinator=coordinator), fleet.agent(
        coordinator.url, coordinator=coordinator)
    doomed_id, steady_id = doomed.agent_id(), steady.agent_id()
    for agent in (doomed, steady):
        stored = agent.workdir / "credential.json"
        assert stored.stat().st_mode & 0o777 == 0o600
        assert fleet.enrol_token not in stored.read_text()
        assert "(own credential)" in agent.log()
    model = fleet.model()
    settings = LatencySettings.from_dict(fleet.slow(0.3))
    results: list[LatencyResult] = []
    errors: list[BaseException] = []
    with RemoteLatencyBackend(coordinator.url, fleet.token, "cpu-test", timeout_s=240, ca=coordinator.ca) as backend:

        def search(count: int) -> None:
            try:
                for _ in range(count):
                    results.append(backend.measure(model, fleet.input_shape, settings))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        searchers = [threading.Thread(target=search, args=(JOBS // 4,)) for _ in range(4)]
        for thread in searchers:
            thread.start()
        fleet.wait_for(lambda: _done_count(doomed) >= 2, 120, "the doomed agent to measure two jobs")
        revoked = _revoke(coordinator, doomed_id)
        revoked_at = time.time()
        assert revoked.returncode == 0 and f"revoked agent {doomed_id}" in revoked.stdout, revoked.stderr
        assert doomed.wait(60) == 2
        for thread in searchers:
            thread.join(300)
    assert not errors, errors
    log = doomed.log()
    assert f"agent {doomed_id}'s credential was revoked" in log and "fix: the coordinator no longer accepts this agent's credential" in log
    client = fleet.client(coordinator)
    jobs = client.jobs(limit=1000)
    assert len(results) == JOBS and client.stats()["jobs"] == {"done": JOBS}, "0 lost"
    assert all(job["result"]["agent"] == job["agent_id"] for job in jobs)
    assert {job["result"]["agent"] for job in jobs if job["finished_at"] > revoked_at + 1} == {steady_id}
    by_agent = Counter(job["result"]["agent"] for job in jobs)
    agents = {agent["id"]: agent for agent in client.agents()}
    assert {agent_id: agents[agent_id]["jobs_done"] for agent_id in agents} == dict(by_agent), "0 duplicated"
    assert by_agent[doomed_id] == _done_count(doomed) >= 2 and by_agent[steady_id] == JOBS - by_agent[doomed_id]
    assert agents[doomed_id]["revoked"] and not agents[doomed_id]["live"] and not agents[steady_id]["revoked"]
    assert all(result.source == "measured" and result.device == agents[result.agent]["device"] for result in results)
    # A job in flight at revocation logs the refusal twice (lost lease, then the claim): count from here.
    refusals_before = doomed.log().count("credential was revoked")
    doomed.restart()
    assert doomed.wait(60) == 2, "a restarted revoked agent is refused again"
    refusals = doomed.log().count("credential was revoked") - refusals_before
    assert refusals == 1 and len(client.agents()) == 2, "it did not re-enrol"
    assert steady.process.poll() is None


def test_an_enrolled_agent_restarts_on_its_credential_alone(fleet: Any) -> None:
    coordinator = fleet.coordinator(tls=True)
    agent = fleet.agent(coordinator.url, coordinator=coordinator)
    first_id = agent.agent_id()
    agent.signal(15)
    assert agent.wait(60) == 0
    agent.token = ""
    agent.restart()
    fleet.wait_for(lambda: agent.log().count("registered as") == 2, 60, "the agent to register again")
    assert agent.agent_id() == first_id and agent.log().count("enrolled as") == 1
    with RemoteLatencyBackend(coordinator.url, fleet.token, "cpu-test", timeout_s=120, ca=coordinator.ca) as backend:
        result = backend.measure(fleet.model(), fleet.input_shape, LatencySettings.from_dict(fleet.quick))
    assert result.agent == first_id
    assert [a["id"] for a in fleet.client(coordinator).agents()] == [first_id]


def test_tls_misconfiguration_is_one_clear_error(fleet: Any, tmp_path: Path) -> None:
    coordinator = fleet.coordinator(tls=True)
    untrusting = fleet.agent(coordinator.url)
    assert untrusting.wait(60) == 2
    assert "cannot verify the certificate" in untrusting.log() and "fix: pass --ca" in untrusting.log()
    stranger = fleet.tls_files()
    with RemoteLatencyBackend(coordinator.url, fleet.token, "cpu-test", timeout_s=30, ca=stranger.ca) as backend:
        with pytest.raises(LatencyError, match="cannot verify the certificate") as failure:
            backend.measure(fleet.model(), fleet.input_shape, LatencySettings.from_dict(fleet.quick))
    assert "--fleet-ca" in failure.value.fix
    token_as_enrolment = fleet.agent(coordinator.url, "cpu-test", "--ca", str(coordinator.ca))
    assert token_as_enrolment.wait(60) == 2
    assert "refused this agent's registration" in token_as_enrolment.log()
    served = subprocess.run(
        [sys.executable, "-m", "evaluators.fleet", "serve", "--storage", f"sqlite:///{tmp_path / 'x.db'}",
         "--token", fleet.token, "--tls-cert", str(coordinator.ca), "--tls-key", str(coordinator.ca),
         "--listen", "127.0.0.1:0"], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert served.returncode == 2 and served.stderr.count("\n") == 1
    assert "TLS needs an enrolment token" in served.stderr
    listing = subprocess.run([sys.executable, "-m", "evaluators.fleet", "agents", "list", "--storage",
                              coordinator.storage], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "no agents registered" in listing.stdout
    unknown = _revoke(coordinator, "nobody-1234")
    assert unknown.returncode == 2 and "no agent 'nobody-1234'" in unknown.stderr
