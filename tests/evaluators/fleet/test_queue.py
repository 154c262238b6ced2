"""The job state machine under real concurrency: threads racing on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import Engine, delete

from evaluators.db import make_engine, session_scope
from evaluators.fleet import queue, store
from evaluators.fleet.tables import AgentRow, ArtifactChunkRow, ArtifactRow, JobRow

SHA = "a" * 64


def _fresh(engine: Engine, jobs: int) -> list[str]:
    with session_scope(engine) as session:
        session.execute(delete(JobRow))
        session.execute(delete(AgentRow))
        session.execute(delete(ArtifactChunkRow))
        session.execute(delete(ArtifactRow))
    with session_scope(engine) as session:
        store.put(session, SHA, io.BytesIO(b"\x08\x01onnx"), 6, now=time.time())
    with session_scope(engine) as session:
        return [
            queue.enqueue(session, device_tag="rpi4b", artifact_sha256=SHA, input_shape=[1, 3, 8, 8],
                          settings={}, max_attempts=3, now=time.time() + i * 1e-3).id
            for i in range(jobs)
        ]


def _claim_until_empty(engine: Engine, agent: str, out: list[str]) -> None:
    while True:
        with session_scope(engine) as session:
            job = queue.claim(session, agent_id=agent, device_tag="rpi4b", lease_seconds=60, now=time.time())
            claimed = None if job is None else job.id
        if claimed is not None:
            out.append(claimed)
            continue
        with session_scope(engine) as session:
            if not queue.count_by_state(session).get("queued"):
                return


def _race(engine: Engine, jobs: int, claimers: int) -> None:
    ids = _fresh(engine, jobs)
    claimed: list[list[str]] = [[] for _ in range(claimers)]
    threads = [
        threading.Thread(target=_claim_until_empty, args=(engine, f"agent-{i}", claimed[i])) for i in range(claimers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    everything = [job for part in claimed for job in part]
    assert sorted(everything) == sorted(ids), "every job claimed exactly once"
    assert sum(1 for part in claimed if part) >= 2, "the claimers shared the queue"
    with session_scope(engine) as session:
        assert queue.count_by_state(session) == {"leased": jobs}
        leases = {job: queue.get_job(session, job).lease_id for job in ids}
        owners = {job: queue.get_job(session, job).agent_id for job in ids}
    wins: list[str] = []
    barrier = threading.Barrier(2)

    def complete(job: str, agent: str) -> None:
        barrier.wait()
        try:
            with session_scope(engine) as session:
                queue.complete(
                    session, job, agent_id=agent, lease_id=leases[job] or "", result={"n": 1}, now=time.time()
                )
            wins.append(job)
        except queue.LeaseConflict:
            pass

    for job in ids[:40]:
        racers = [threading.Thread(target=complete, args=(job, owners[job] or "")) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(60)
    assert sorted(wins) == sorted(ids[:40]), "each duplicate result refused, each first one accepted"


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    yield engine
    engine.dispose()


def test_concurrent_claims_and_results_on_sqlite(sqlite_engine: Engine) -> None:
    _race(sqlite_engine, jobs=200, claimers=4)


@pytest.mark.postgres
def test_concurrent_claims_and_results_on_postgres(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        _race(engine, jobs=200, claimers=4)
    finally:
        engine.dispose()
