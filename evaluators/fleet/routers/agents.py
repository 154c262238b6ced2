"""Agent endpoints: register, list, claim a job (long-poll), say goodbye."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from evaluators.db import session_scope
from evaluators.fleet import queue, registry, store
from evaluators.fleet.dependencies import ClockDep, EngineDep, SessionDep, SettingsDep, WakeupDep
from evaluators.fleet.routers.paths import AgentIdPath
from evaluators.fleet.schemas import (
    AgentRegistered,
    AgentRegistration,
    AgentView,
    ClaimedJob,
    ClaimRequest,
    DeviceTag,
)
from evaluators.fleet.settings import FleetSettings
from evaluators.fleet.tables import AgentRow
from evaluators.fleet.wakeup import long_poll

router = APIRouter(prefix="/agents", tags=["agents"])


def agent_view(agent: AgentRow, *, now: float, settings: FleetSettings) -> AgentView:
    """The API view of ``agent``."""
    return AgentView(
        id=agent.id, name=agent.name, device_tag=agent.device_tag, device=agent.device,
        machine=agent.machine, cores=agent.cores, ram_mb=agent.ram_mb, runtime=agent.runtime,
        python=agent.python, tags=agent.tags, stopped=agent.stopped,
        live=registry.is_live(agent, now=now, live_seconds=settings.live_seconds),
        last_seen_seconds_ago=max(0.0, now - agent.last_seen_at), jobs_done=agent.jobs_done,
        jobs_failed=agent.jobs_failed,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def register_agent(
    body: AgentRegistration, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> AgentRegistered:
    """Register an agent (every start or reconnect of the daemon) and tell it the timing contract."""
    agent = registry.register(session, body.model_dump(), now=clock())
    return AgentRegistered(
        agent_id=agent.id, heartbeat_seconds=settings.heartbeat_seconds,
        lease_seconds=settings.lease_seconds, max_wait_seconds=settings.max_wait_seconds,
    )


@router.get("")
def list_agents(
    session: SessionDep, settings: SettingsDep, clock: ClockDep,
    device_tag: Annotated[DeviceTag | None, Query()] = None,
    live_only: Annotated[bool, Query()] = False,
) -> list[AgentView]:
    """Agents, most recently seen first (only live ones with ``live_only``)."""
    now = clock()
    agents = registry.list_agents(
        session, device_tag=device_tag, live_only=live_only, now=now,
        live_seconds=settings.live_seconds,
    )
    return [agent_view(agent, now=now, settings=settings) for agent in agents]


@router.post(
    "/{agent_id}/claim",
    response_model=ClaimedJob,
    responses={204: {"description": "no job for the agent's device tag within the wait"}},
)
async def claim_job(
    agent_id: AgentIdPath, body: ClaimRequest, engine: EngineDep, settings: SettingsDep,
    wakeup: WakeupDep, clock: ClockDep,
) -> ClaimedJob | Response:
    """Lease the oldest queued job of the agent's device tag, waiting up to ``wait_s`` for one.

    The agent's liveness is recorded at the start of the wait.
    """
    seen = False

    def attempt(final: bool) -> ClaimedJob | None:
        nonlocal seen
        with session_scope(engine) as session:
            now = clock()
            if not seen:
                agent = registry.touch(session, agent_id, now=now)
                seen = True
            else:
                agent = session.get_one(AgentRow, agent_id)
            job = queue.claim(
                session, agent_id=agent_id, device_tag=agent.device_tag,
                lease_seconds=settings.lease_seconds, now=now,
            )
            claimed = None if job is None else ClaimedJob(
                id=job.id, lease_id=job.lease_id or "", artifact_sha256=job.artifact_sha256,
                artifact_size=store.size_of(session, job.artifact_sha256) or 0,
                input_shape=job.input_shape, settings=job.settings, attempt=job.attempts,
                max_attempts=job.max_attempts, lease_seconds=settings.lease_seconds,
                heartbeat_seconds=settings.heartbeat_seconds,
            )
        if queue.changed(session):
            wakeup.notify()
        return claimed

    claimed = await long_poll(attempt, wait_s=min(body.wait_s, settings.max_wait_seconds), wakeup=wakeup)
    return Response(status_code=status.HTTP_204_NO_CONTENT) if claimed is None else claimed


@router.post("/{agent_id}/goodbye", status_code=status.HTTP_204_NO_CONTENT)
def goodbye(agent_id: AgentIdPath, session: SessionDep) -> None:
    """The agent is shutting down cleanly: it stops counting as live."""
    registry.goodbye(session, agent_id)


