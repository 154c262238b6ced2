"""The fleet tables (``hwsearch_agents``, ``hwsearch_jobs``), read with plain SQL.

The tables belong to the fleet coordinator; this module does not import its models. It reflects
whatever columns exist and maps them to roles by name (:data:`AGENT_COLUMNS`,
:data:`JOB_COLUMNS`), so a missing or renamed column costs one figure, not the page. Job states
are grouped case-insensitively into queued / running / done / failed / cancelled
(:data:`STATE_GROUPS`). Time columns may hold datetimes or epoch seconds (the coordinator writes
floats); both are shown as UTC datetimes. Columns whose names mention a token, secret or password
are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd
import sqlalchemy
from sqlalchemy import Engine, MetaData, Table, func, select

AGENTS_TABLE = "hwsearch_agents"
JOBS_TABLE = "hwsearch_jobs"
AGENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "agent": ("id", "agent_id", "name", "agent"),
    "device": ("device", "device_model", "model", "hardware", "cpu"),
    "tag": ("device_tag", "tag", "tags"),
    "last_seen": ("last_seen", "last_seen_at", "last_heartbeat", "heartbeat_at", "updated_at"),
    "jobs_done": ("jobs_done", "n_done", "completed_jobs", "done"),
}
JOB_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "job_id"),
    "state": ("state", "status"),
    "agent": ("agent_id", "agent", "claimed_by", "worker"),
    "tag": ("device_tag", "tag", "device"),
    "time": ("finished_at", "completed_at", "updated_at", "created_at", "submitted_at"),
    "error": ("error", "fail_reason", "failure", "message", "detail"),
}
STATE_GROUPS: dict[str, frozenset[str]] = {
    "queued": frozenset({"queued", "pending", "waiting", "new", "ready", "submitted"}),
    "running": frozenset({"claimed", "running", "leased", "started", "in_progress"}),
    "done": frozenset({"done", "completed", "complete", "succeeded", "success", "finished"}),
    "failed": frozenset({"failed", "error", "errored", "fail", "expired"}),
    "cancelled": frozenset({"cancelled", "canceled"}),
}
HIDDEN_WORDS: tuple[str, ...] = ("token", "secret", "password")
MAX_AGENTS = 1000


@dataclass
class FleetSnapshot:
    """What the Fleet page shows.

    Attributes:
        agents: One row per agent: ``agent``, ``device``, ``tag``, ``last seen``, ``jobs done``
            first (those found), then the table's other readable columns.
        job_states: Number of jobs per stored state.
        queue_depth: Jobs in a queued state.
        running: Jobs in a running state.
        failures: The most recent failed jobs, newest first.
        notes: What could not be shown and why (missing tables or columns).
    """

    agents: pd.DataFrame
    job_states: dict[str, int]
    queue_depth: int
    running: int
    failures: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def has_fleet_tables(table_names: Sequence[str] | set[str]) -> bool:
    """True when the database has at least one fleet table."""
    return AGENTS_TABLE in table_names or JOBS_TABLE in table_names


def pick_column(columns: Sequence[str], names: Sequence[str]) -> str | None:
    """The first of ``names`` among ``columns`` (case-insensitive), as spelled in ``columns``."""
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def state_group(state: Any) -> str:
    """``queued``, ``running``, ``done``, ``failed``, ``cancelled`` or ``other`` for a job state."""
    text = str(getattr(state, "value", state)).strip().lower()
    return next((group for group, names in STATE_GROUPS.items() if text in names), "other")


def to_datetimes(values: pd.Series) -> pd.Series:
    """UTC datetimes from datetimes, datetime strings or epoch seconds (NaT where unreadable)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    numeric = pd.to_numeric(values, errors="coerce")
    if len(values) and numeric.notna().sum() == values.notna().sum():
        return pd.to_datetime(numeric, unit="s", errors="coerce", utc=True)
    return pd.to_datetime(values, errors="coerce", utc=True)


def with_datetimes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every ``*_at`` column turned into UTC datetimes (see :func:`to_datetimes`)."""
    out = frame.copy()
    for column in out.columns:
        if str(column).lower().endswith("_at"):
            out[column] = to_datetimes(out[column])
    return out


def readable_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` without the ones that may hold credentials."""
    return [c for c in columns if not any(word in c.lower() for word in HIDDEN_WORDS)]


def agents_frame(rows: pd.DataFrame, done_by_agent: Mapping[str, int]) -> pd.DataFrame:
    """Agents with their role columns first, renamed; ``jobs done`` from the jobs table if absent.

    Args:
        rows: The agents table as read (credential columns already left out).
        done_by_agent: Done jobs per agent id (``str`` keys), from the jobs table.
    """
    columns = list(rows.columns)
    rename: dict[str, str] = {}
    for role, label in (("agent", "agent"), ("device", "device"), ("tag", "tag"),
                        ("last_seen", "last seen"), ("jobs_done", "jobs done")):
        found = pick_column(columns, AGENT_COLUMNS[role])
        if found is not None and found not in rename:
            rename[found] = label
    out = with_datetimes(rows).rename(columns=rename)
    if "jobs done" not in out.columns and "agent" in out.columns:
        out["jobs done"] = [int(done_by_agent.get(str(a), 0)) for a in out["agent"]]
    if "last seen" in out.columns:
        out["last seen"] = to_datetimes(out["last seen"])
        out = out.sort_values("last seen", ascending=False, na_position="last")
    first = [c for c in ("agent", "device", "tag", "last seen", "jobs done") if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


def queue_figures(job_states: Mapping[str, int]) -> tuple[int, int]:
    """``(queue depth, running)`` from job counts per stored state."""
    queued = sum(n for s, n in job_states.items() if state_group(s) == "queued")
    running = sum(n for s, n in job_states.items() if state_group(s) == "running")
    return queued, running


def _reflect(engine: Engine, name: str) -> Table:
    return Table(name, MetaData(), autoload_with=engine)


def _read_agents(engine: Engine, notes: list[str]) -> pd.DataFrame:
    table = _reflect(engine, AGENTS_TABLE)
    columns = readable_columns([c.name for c in table.columns])
    with engine.connect() as connection:
        result = connection.execute(select(*[table.c[c] for c in columns]).limit(MAX_AGENTS))
        frame = pd.DataFrame(result.fetchall(), columns=columns)
    if pick_column(columns, AGENT_COLUMNS["last_seen"]) is None:
        notes.append(f"{AGENTS_TABLE} has no last-seen column")
    return frame


def _read_jobs(engine: Engine, recent: int, notes: list[str]) -> tuple[dict[str, int], dict[str, int], pd.DataFrame]:
    table = _reflect(engine, JOBS_TABLE)
    names = [c.name for c in table.columns]
    state = pick_column(names, JOB_COLUMNS["state"])
    if state is None:
        notes.append(f"{JOBS_TABLE} has no state column: queue depth and failures unknown")
        return {}, {}, pd.DataFrame()
    state_col = table.c[state]
    agent = pick_column(names, JOB_COLUMNS["agent"])
    time_col = pick_column(names, JOB_COLUMNS["time"])
    with engine.connect() as connection:
        counts = connection.execute(select(state_col, func.count()).group_by(state_col)).fetchall()
        job_states = {str(getattr(s, "value", s)): int(n) for s, n in counts}
        done_states = [s for s in job_states if state_group(s) == "done"]
        failed_states = [s for s in job_states if state_group(s) == "failed"]
        done_by_agent: dict[str, int] = {}
        if agent is not None and done_states:
            query = (select(table.c[agent], func.count())
                     .where(state_col.in_(_raw_states(counts, done_states)))
                     .group_by(table.c[agent]))
            done_by_agent = {str(a): int(n) for a, n in connection.execute(query).fetchall()}
        failures = pd.DataFrame()
        if failed_states:
            roles = ("id", "tag", "agent", "state", "time", "error")
            found = (pick_column(names, JOB_COLUMNS[role]) for role in roles)
            shown = readable_columns([c for c in found if c is not None])
            query = select(*[table.c[c] for c in shown]).where(
                state_col.in_(_raw_states(counts, failed_states)))
            if time_col is not None:
                query = query.order_by(table.c[time_col].desc())
            failures = pd.DataFrame(connection.execute(query.limit(recent)).fetchall(), columns=shown)
            failures = with_datetimes(failures)
    if time_col is None:
        notes.append(f"{JOBS_TABLE} has no time column: failures are not in time order")
    return job_states, done_by_agent, failures


def _raw_states(counts: Sequence[Any], wanted: Sequence[str]) -> list[Any]:
    """The stored state values (enums or strings) whose text is in ``wanted``."""
    return [s for s, _ in counts if str(getattr(s, "value", s)) in wanted]


def read_fleet(engine: Engine, recent: int = 20) -> FleetSnapshot | None:
    """Read the fleet tables, or None when the database has neither.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: When a table exists but cannot be read.
    """
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    if not has_fleet_tables(tables):
        return None
    notes: list[str] = []
    job_states: dict[str, int] = {}
    done_by_agent: dict[str, int] = {}
    failures = pd.DataFrame()
    if JOBS_TABLE in tables:
        job_states, done_by_agent, failures = _read_jobs(engine, recent, notes)
    else:
        notes.append(f"no {JOBS_TABLE} table: queue depth and failures unknown")
    if AGENTS_TABLE in tables:
        agents = agents_frame(_read_agents(engine, notes), done_by_agent)
    else:
        notes.append(f"no {AGENTS_TABLE} table")
        agents = pd.DataFrame()
    queued, running = queue_figures(job_states)
    return FleetSnapshot(agents, job_states, queued, running, failures, notes)
