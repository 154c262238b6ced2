"""Load: 4 agent processes x 200 jobs each through one coordinator over HTTPS, the agents enrolled
with their own credentials; none lost, none duplicated."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from typing import Any

import pytest

pytestmark = pytest.mark.slow

AGENTS = 4
JOBS_PER_AGENT = 200


def test_four_agents_and_800_jobs_over_tls_lose_and_duplicate_nothing(fleet: Any) -> None:
    coordinator = fleet.coordinator(tls=True)
    agents = [fleet.agent(coordinator.url, coordinator=coordinator) for _ in range(AGENTS)]
    ids = [agent.agent_id() for agent in agents]
    client = fleet.client(coordinator)
    data = fleet.model().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    settings = {**fleet.quick, "warmup": 0, "min_repeats": 1, "max_repeats": 1}
    total = AGENTS * JOBS_PER_AGENT
    submitted: list[str] = []

    def submit(count: int) -> None:
        with coordinator.client() as own:
            for _ in range(count):
                submitted.append(own.enqueue("cpu-test", sha, [1, 3, 8, 8], settings)["id"])

    submitters = [threading.Thread(target=submit, args=(JOBS_PER_AGENT,)) for _ in range(AGENTS)]
    for thread in submitters:
        thread.start()
    for thread in submitters:
        thread.join(600)
    assert len(set(submitted)) == total
    fleet.wait_for(lambda: client.stats()["jobs"].get("done", 0) == total, 600, f"{total} jobs done", step=0.5)
    jobs = client.jobs(limit=10_000)
    assert client.stats()["jobs"] == {"done": total}
    assert {job["id"] for job in jobs} == set(submitted)
    assert all(job["attempts"] == 1 and job["result"]["agent"] == job["agent_id"] for job in jobs)
    measured_by = Counter(job["result"]["agent"] for job in jobs)
    assert set(measured_by) <= set(ids) and sum(measured_by.values()) == total
    accepted = {agent["id"]: agent["jobs_done"] for agent in client.agents()}
    assert accepted == {agent_id: measured_by[agent_id] for agent_id in ids}
    for agent, agent_id in zip(agents, ids):
        log = agent.log()
        assert log.count(": done, median") == measured_by[agent_id]
        assert "refused" not in log and "failed" not in log
