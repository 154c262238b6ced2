"""Agent endpoints: enrol, register, list, claim a job (long-poll), say goodbye."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from evaluators.db import session_scope
from evaluators.fleet import enrolment, queue, registry, store
from evaluators.fleet.auth import AGENT, ENROL, REQUESTER, SHARED
from evaluators.fleet.dependencies import (
    ClockDep,
    EngineDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    WakeupDep,
    allow,
    check_agent,
)
from evaluators.fleet.routers.paths import AgentIdPath
from evaluators.fleet.schemas import (
    AgentEnrolled,
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

router = APIRouter(tags=["agents"])


def agent_view(agent: AgentRow, *, now: float, settings: FleetSettings, revoked: bool | None) -> AgentView:
    """The API view of ``agent`` (``revoked`` None: it never enrolled)."""
    return AgentView(
        id=agent.id, name=agent.name, device_tag=agent.device_tag, device=agent.device,
        machine=agent.machine, cores=agent.cores, ram_mb=agent.ram_mb, runtime=agent.runtime,
        python=agent.python, tags=agent.tags, stopped=agent.stopped,
        live=registry.is_live(agent, now=now, live_seconds=settings.live_seconds),
        enrolled=revoked is not None, revoked=bool(revoked),
        last_seen_seconds_ago=max(0.0, now - agent.last_seen_at), jobs_done=agent.jobs_done,
        jobs_failed=agent.jobs_failed,
    )


def _contract(agent_id: str, settings: FleetSettings) -> dict[str, object]:
    return {
        "agent_id": agent_id, "heartbeat_seconds": settings.heartbeat_seconds,
        "lease_seconds": settings.lease_seconds, "max_wait_seconds": settings.max_wait_seconds,
    }


@router.post("/enrol", status_code=status.HTTP_201_CREATED, dependencies=[Depends(allow(ENROL, SHARED))])
def enrol_agent(
    body: AgentRegistration, session: SessionDep, settings: SettingsDep, clock: ClockDep, principal: PrincipalDep
) -> AgentEnrolled:
    """Enrol a new agent: its id, the timing contract and its own credential (shown this once).

    409 on a coordinator in legacy shared-token mode, where agents register instead.
    """
    if principal.role == SHARED:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=(
            "this coordinator runs in legacy shared-token mode (no --enrol-token): agents register with "
            "POST /v1/agents"
        ))
    agent, credential = enrolment.enrol(session, body.model_dump(), now=clock())
    return AgentEnrolled(**_contract(agent.id, settings), credential=credential)  # type: ignore[arg-type]


@router.post("/agents", status_code=status.HTTP_201_CREATED, dependencies=[Depends(allow(AGENT))])
def register_agent(
    body: AgentRegistration, session: SessionDep, settings: SettingsDep, clock: ClockDep,
    principal: PrincipalDep, response: Response,
) -> AgentRegistered:
    """(Re)register at every start or reconnect of the daemon and tell it the timing contract.

    An enrolled agent keeps its id (200; its device record is refreshed). With the legacy shared
    token every registration is a new agent (201).
    """
    if principal.role == SHARED:
        agent = registry.register(session, body.model_dump(), now=clock())
    else:
        assert principal.agent_id is not None
        agent = registry.update_device(session, principal.agent_id, body.model_dump(), now=clock())
        response.status_code = status.HTTP_200_OK
    return AgentRegistered(**_contract(agent.id, settings))  # type: ignore[arg-type]


@router.get("/agents", dependencies=[Depends(allow(REQUESTER))])
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
    revoked = enrolment.states(session, [agent.id for agent in agents])
    return [agent_view(agent, now=now, settings=settings, revoked=revoked.get(agent.id)) for agent in agents]


@router.post(
    "/agents/{agent_id}/claim",
    response_model=ClaimedJob,
    responses={204: {"description": "no job for the agent's device tag within the wait"}},
    dependencies=[Depends(allow(AGENT))],
)
async def claim_job(
    agent_id: AgentIdPath, body: ClaimRequest, engine: EngineDep, settings: SettingsDep,
    wakeup: WakeupDep, clock: ClockDep, principal: PrincipalDep,
) -> ClaimedJob | Response:
    """Lease the oldest queued job of the agent's device tag, waiting up to ``wait_s`` for one.

    The agent's liveness is recorded at the start of the wait.
    """
    check_agent(principal, agent_id)
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


@router.post("/agents/{agent_id}/goodbye", status_code=status.HTTP_204_NO_CONTENT,
             dependencies=[Depends(allow(AGENT))])
def goodbye(agent_id: AgentIdPath, session: SessionDep, principal: PrincipalDep) -> None:
    """The agent is shutting down cleanly: it stops counting as live."""
    check_agent(principal, agent_id)
    registry.goodbye(session, agent_id)


