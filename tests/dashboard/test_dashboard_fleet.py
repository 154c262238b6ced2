"""Fleet tables read with plain SQL, tolerating missing columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from dashboard.fleet import agents_frame, queue_figures, read_fleet, state_group, to_datetimes


def _engine(path: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{path}")


T0 = 1_767_261_600.0  # 2026-01-01 10:00 UTC, epoch seconds as the coordinator writes them


def _fleet_db(path: Path, with_state: bool = True) -> None:
    """Tables shaped like the coordinator's (epoch-second floats), plus a credential column."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE hwsearch_agents (id TEXT, name TEXT, device_tag TEXT, device TEXT, "
                   "last_seen_at REAL, jobs_failed INTEGER, token_hash TEXT)")
        db.executemany("INSERT INTO hwsearch_agents VALUES (?, ?, ?, ?, ?, ?, ?)", [
            ("a1", "pi-1", "rpi4b", "Raspberry Pi 4 Model B Rev 1.4", T0, 1, "h1"),
            ("a2", "pi-2", "rpi4b", "Raspberry Pi 4 Model B Rev 1.5", T0 + 3600, 0, "h2"),
        ])
        state = "state TEXT, " if with_state else ""
        db.execute(f"CREATE TABLE hwsearch_jobs (id TEXT, {state}agent_id TEXT, device_tag TEXT, "
                   "finished_at REAL, error TEXT)")
        rows = [("j1", "done", "a1", 0), ("j2", "DONE", "a1", 60), ("j3", "done", "a2", 120),
                ("j4", "queued", None, None), ("j5", "queued", None, None), ("j6", "leased", "a2", None),
                ("j7", "failed", "a1", -3600), ("j8", "failed", "a2", 360), ("j9", "cancelled", None, 400)]
        for job_id, job_state, agent, offset in rows:
            when = None if offset is None else T0 + offset
            values = (job_id, job_state, agent, "rpi4b", when, "sha256 mismatch" if job_state == "failed" else None)
            if not with_state:
                values = values[:1] + values[2:]
            db.execute(f"INSERT INTO hwsearch_jobs VALUES ({', '.join('?' * len(values))})", values)


def test_no_fleet_tables(seeded_db) -> None:  # type: ignore[no-untyped-def]
    assert read_fleet(_engine(seeded_db.path)) is None


def test_fleet_snapshot(tmp_path: Path) -> None:
    _fleet_db(tmp_path / "f.db")
    snapshot = read_fleet(_engine(tmp_path / "f.db"))
    assert snapshot is not None
    assert (snapshot.queue_depth, snapshot.running) == (2, 1)
    agents = snapshot.agents
    assert list(agents.columns[:5]) == ["agent", "device", "tag", "last seen", "jobs done"]
    assert "token_hash" not in agents.columns
    assert list(agents["agent"]) == ["a2", "a1"]  # most recently seen first
    assert agents["last seen"].iloc[0] == pd.Timestamp("2026-01-01 11:00", tz="UTC")
    assert dict(zip(agents["agent"], agents["jobs done"])) == {"a1": 2, "a2": 1}
    assert list(snapshot.failures["id"]) == ["j8", "j7"]  # newest first, cancelled is no failure
    assert set(snapshot.failures["error"]) == {"sha256 mismatch"}
    assert snapshot.failures["finished_at"].iloc[0] == pd.Timestamp("2026-01-01 10:06", tz="UTC")
    assert snapshot.job_states["cancelled"] == 1
    assert snapshot.notes == []


def test_fleet_without_state_column_or_agents(tmp_path: Path) -> None:
    _fleet_db(tmp_path / "f.db", with_state=False)
    with sqlite3.connect(tmp_path / "f.db") as db:
        db.execute("DROP TABLE hwsearch_agents")
    snapshot = read_fleet(_engine(tmp_path / "f.db"))
    assert snapshot is not None and snapshot.agents.empty and snapshot.queue_depth == 0
    assert any("no state column" in n for n in snapshot.notes)
    assert any("no hwsearch_agents table" in n for n in snapshot.notes)


def test_state_groups_and_agents_frame() -> None:
    assert [state_group(s) for s in ("QUEUED", "leased", "succeeded", "expired", "cancelled", "weird")] == [
        "queued", "running", "done", "failed", "cancelled", "other"]
    assert queue_figures({"queued": 3, "pending": 1, "running": 2, "done": 9}) == (4, 2)
    epoch = pd.Series([T0, None])
    once = to_datetimes(epoch)
    assert once.iloc[0] == pd.Timestamp("2026-01-01 10:00", tz="UTC") and pd.isna(once.iloc[1])
    assert to_datetimes(once).equals(once)
    assert to_datetimes(pd.Series(["2026-01-01 10:00"])).iloc[0] == once.iloc[0]
    frame = agents_frame(pd.DataFrame({"name": ["a"], "jobs_done": [7]}), {"a": 1})
    assert list(frame.columns) == ["agent", "jobs done"] and frame["jobs done"].iloc[0] == 7


def test_coordinator_tables(tmp_path: Path) -> None:
    """Against the fleet coordinator's own SQLAlchemy models, when they are importable."""
    tables = pytest.importorskip("evaluators.fleet.tables")
    engine = _engine(tmp_path / "coordinator.db")
    tables.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.insert(tables.AgentRow.__table__).values(
            id="a1", name="pi", device_tag="rpi4b", device="Raspberry Pi 4 Model B", machine="aarch64", cores=4,
            ram_mb=4096, runtime="onnxruntime 1.22", python="3.11", tags_json="[]", registered_at=T0,
            last_seen_at=T0 + 5, stopped=False, jobs_done=3, jobs_failed=1))
        connection.execute(sqlalchemy.insert(tables.ArtifactRow.__table__).values(
            sha256="0" * 64, size_bytes=1, data=b"x", created_at=T0))
        for job_id, state in (("j1", "queued"), ("j2", "leased"), ("j3", "failed")):
            connection.execute(sqlalchemy.insert(tables.JobRow.__table__).values(
                id=job_id, device_tag="rpi4b", artifact_sha256="0" * 64, input_shape_json="[1, 3, 64, 64]",
                settings_json="{}", state=state, attempts=1, max_attempts=3, agent_id="a1", created_at=T0,
                finished_at=T0 + 9 if state == "failed" else None, error="timeout" if state == "failed" else None))
    snapshot = read_fleet(engine)
    assert snapshot is not None and (snapshot.queue_depth, snapshot.running) == (1, 1)
    agent = snapshot.agents.iloc[0]
    assert (agent["agent"], agent["device"], agent["tag"], agent["jobs done"]) == (
        "a1", "Raspberry Pi 4 Model B", "rpi4b", 3)
    assert agent["last seen"] == pd.Timestamp(T0 + 5, unit="s", tz="UTC")
    assert list(snapshot.failures["error"]) == ["timeout"]
