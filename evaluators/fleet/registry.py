"""Agent registration and liveness, over the ``hwsearch_agents`` table."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from evaluators.fleet.tables import AgentRow


class AgentNotFound(LookupError):
    """No agent has that id (it never registered with this database)."""


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return slug or "agent"


def register(session: Session, info: dict[str, Any], *, now: float) -> AgentRow:
    """Add an agent; its id is ``<name slug>-<8 hex digits>`` (readable in trial records).

    Args:
        info: name, device_tag, device, machine, cores, ram_mb, runtime, python and tags.
    """
    agent = AgentRow(
        id=f"{_slug(info['name'])}-{uuid.uuid4().hex[:8]}", name=info["name"],
        device_tag=info["device_tag"], device=info["device"], machine=info["machine"],
        cores=info["cores"], ram_mb=info["ram_mb"], runtime=info["runtime"], python=info["python"],
        tags_json=json.dumps(list(info["tags"])), registered_at=now, last_seen_at=now,
        stopped=False, jobs_done=0, jobs_failed=0,
    )
    session.add(agent)
    session.flush()
    return agent


def update_device(session: Session, agent_id: str, info: dict[str, Any], *, now: float) -> AgentRow:
    """Record what an enrolled agent says about its device on a restart; it is live again.

    Its id, name and counters stay; everything it reports about the device is replaced (the
    runtime may have been upgraded since it enrolled).

    Raises:
        AgentNotFound: When there is no such agent.
    """
    session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(
        device_tag=info["device_tag"], device=info["device"], machine=info["machine"], cores=info["cores"],
        ram_mb=info["ram_mb"], runtime=info["runtime"], python=info["python"],
        tags_json=json.dumps(list(info["tags"])), last_seen_at=now, stopped=False,
    ))
    return touch(session, agent_id, now=now)


def touch(session: Session, agent_id: str, *, now: float) -> AgentRow:
    """Record that ``agent_id`` is alive; returns it.

    Raises:
        AgentNotFound: When it never registered.
    """
    session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(last_seen_at=now, stopped=False))
    agent = session.scalars(
        select(AgentRow).where(AgentRow.id == agent_id).execution_options(populate_existing=True)
    ).one_or_none()
    if agent is None:
        raise AgentNotFound(f"no agent {agent_id}")
    return agent


def goodbye(session: Session, agent_id: str) -> None:
    """Mark ``agent_id`` stopped (it shut down cleanly); it is no longer live."""
    session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(stopped=True))


def is_live(agent: AgentRow, *, now: float, live_seconds: float) -> bool:
    """True when ``agent`` made a request within ``live_seconds`` and has not said goodbye."""
    return not agent.stopped and now - agent.last_seen_at <= live_seconds


def list_agents(
    session: Session, *, device_tag: str | None, live_only: bool, now: float, live_seconds: float
) -> list[AgentRow]:
    """Agents (of ``device_tag`` when given), most recently seen first."""
    query = select(AgentRow).order_by(AgentRow.last_seen_at.desc())
    if device_tag is not None:
        query = query.where(AgentRow.device_tag == device_tag)
    if live_only:
        query = query.where(AgentRow.stopped.is_(False), AgentRow.last_seen_at >= now - live_seconds)
    return list(session.scalars(query))
