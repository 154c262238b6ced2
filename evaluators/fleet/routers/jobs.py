"""Job endpoints: enqueue, read (long-poll until finished), list, cancel, and the lease holder's
heartbeat, result, failure and release."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from evaluators.contracts import LatencyResult
from evaluators.db import session_scope
from evaluators.fleet import queue, registry, store
from evaluators.fleet.auth import AGENT, REQUESTER
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
from evaluators.fleet.protocol import EMULATED_PREFIX, JOB_STATES, TERMINAL_STATES
from evaluators.fleet.routers.paths import JobIdPath
from evaluators.fleet.schemas import (
    CancelRequest,
    DeviceTag,
    FailureReport,
    Heartbeat,
    JobRequest,
    JobView,
    LeaseExtended,
    LeaseRef,
    ResultReport,
)
from evaluators.fleet.tables import JobRow
from evaluators.fleet.wakeup import long_poll

router = APIRouter(prefix="/jobs", tags=["jobs"])
REQUESTERS = [Depends(allow(REQUESTER))]
AGENTS = [Depends(allow(AGENT))]


def job_view(job: JobRow) -> JobView:
    """The API view of ``job``."""
    return JobView(
        id=job.id, state=job.state, device_tag=job.device_tag, artifact_sha256=job.artifact_sha256,
        input_shape=job.input_shape, settings=job.settings, attempts=job.attempts,
        max_attempts=job.max_attempts, agent_id=job.agent_id, created_at=job.created_at,
        claimed_at=job.claimed_at, finished_at=job.finished_at, result=job.result, error=job.error,
        note=job.note,
    )


def _same_request(job: JobRow, body: JobRequest, max_attempts: int) -> bool:
    return (job.device_tag, job.artifact_sha256, job.input_shape, job.settings, job.max_attempts) == (
        body.device_tag, body.artifact_sha256, body.input_shape, body.settings.model_dump(), max_attempts
    )


def _enqueue(body: JobRequest, engine: Engine, max_attempts: int, now: float) -> tuple[JobView, bool]:
    """Queue ``body``'s job: ``(view, True)``; ``(view of the existing job, False)`` for a taken id.

    Raises:
        HTTPException: 422 for an unknown artifact, 409 when the id is taken by a different request.
    """
    try:
        with session_scope(engine) as session:
            if store.size_of(session, body.artifact_sha256) is None:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[{
                    "type": "value_error", "loc": ["body", "artifact_sha256"],
                    "msg": f"no artifact {body.artifact_sha256}: upload it first (PUT /v1/artifacts/<sha256>)",
                }])
            existing = None if body.id is None else session.get(JobRow, body.id)
            if existing is None:
                return job_view(queue.enqueue(
                    session, device_tag=body.device_tag, artifact_sha256=body.artifact_sha256,
                    input_shape=body.input_shape, settings=body.settings.model_dump(),
                    max_attempts=max_attempts, now=now, job_id=body.id,
                )), True
            same, view = _same_request(existing, body, max_attempts), job_view(existing)
    except IntegrityError:
        if body.id is None:
            raise
        with session_scope(engine) as session:
            existing = queue.get_job(session, body.id)
            same, view = _same_request(existing, body, max_attempts), job_view(existing)
    if not same:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=(
            f"job id {body.id} is taken by a different request (device tag, artifact, input shape, settings "
            "or max_attempts differ): choose a fresh id for a new job"
        ))
    return view, False


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=REQUESTERS)
async def enqueue_job(
    body: JobRequest, response: Response, engine: EngineDep, settings: SettingsDep, wakeup: WakeupDep,
    clock: ClockDep,
) -> JobView:
    """Queue a measurement of an uploaded artifact on a device of ``device_tag``.

    201 when queued; with a client-chosen ``id`` that exists already, 200 and that job when the
    request is the same (a retry, even one racing the first attempt), 409 when it differs.
    """
    view, created = await run_in_threadpool(
        _enqueue, body, engine, body.max_attempts or settings.max_attempts, clock()
    )
    if created:
        wakeup.notify()
    else:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("", dependencies=REQUESTERS)
def list_jobs(
    session: SessionDep,
    state: Annotated[str | None, Query(pattern="^(" + "|".join(JOB_STATES) + ")$")] = None,
    device_tag: Annotated[DeviceTag | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[JobView]:
    """Jobs, oldest first, filtered by state and device tag."""
    query = select(JobRow).order_by(JobRow.created_at, JobRow.id).limit(limit)
    if state is not None:
        query = query.where(JobRow.state == state)
    if device_tag is not None:
        query = query.where(JobRow.device_tag == device_tag)
    return [job_view(job) for job in session.scalars(query)]


@router.get("/{job_id}", dependencies=REQUESTERS)
async def read_job(
    job_id: JobIdPath, engine: EngineDep, wakeup: WakeupDep, settings: SettingsDep, clock: ClockDep,
    wait_s: Annotated[float, Query(ge=0.0, le=3600.0, allow_inf_nan=False)] = 0.0,
) -> JobView:
    """The job; with ``wait_s``, waits up to that long (capped) for it to finish.

    Expired leases are swept first, so a job whose agent died shows as queued again (or failed
    after its last attempt) to whoever is waiting for it.
    """

    def attempt(final: bool) -> JobView | None:
        with session_scope(engine) as session:
            queue.expire_leases(session, now=clock())
            view = job_view(queue.get_job(session, job_id))
        if queue.changed(session):
            wakeup.notify()
        return view if final or view.state in TERMINAL_STATES else None

    view = await long_poll(attempt, wait_s=min(wait_s, settings.max_wait_seconds), wakeup=wakeup)
    assert view is not None
    return view


@router.post("/{job_id}/cancel", dependencies=REQUESTERS)
def cancel_job(job_id: JobIdPath, body: CancelRequest, session: SessionDep, clock: ClockDep) -> JobView:
    """Cancel a queued or leased job; a finished one is returned as it is."""
    return job_view(queue.cancel(session, job_id, reason=body.reason, now=clock()))


@router.post("/{job_id}/heartbeat", dependencies=AGENTS)
def heartbeat(
    job_id: JobIdPath, body: Heartbeat, session: SessionDep, settings: SettingsDep, clock: ClockDep,
    principal: PrincipalDep,
) -> LeaseExtended:
    """Extend the caller's lease; 409 tells the agent to stop (cancelled, re-leased, finished)."""
    check_agent(principal, body.agent_id)
    now = clock()
    registry.touch(session, body.agent_id, now=now)
    queue.heartbeat(
        session, job_id, agent_id=body.agent_id, lease_id=body.lease_id,
        lease_seconds=settings.lease_seconds, now=now,
    )
    return LeaseExtended(lease_seconds=settings.lease_seconds)


@router.post("/{job_id}/result", dependencies=AGENTS)
def post_result(
    job_id: JobIdPath, body: ResultReport, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> JobView:
    """Accept the lease holder's measurement, once; 409 for a duplicate or a lease it lacks.

    The figure is ``emulated`` when the agent says so or registered an emulated device.
    """
    check_agent(principal, body.agent_id)
    now = clock()
    agent = registry.touch(session, body.agent_id, now=now)
    job = queue.get_job(session, job_id)
    m = body.measurement
    emulated = m.source == "emulated" or agent.device.startswith(EMULATED_PREFIX)
    result = LatencyResult(
        median_ms=m.median_ms, p90_ms=m.p90_ms, mean_ms=m.mean_ms, std_ms=m.std_ms, min_ms=m.min_ms,
        n=m.n, device=m.device, device_tag=job.device_tag, threads=m.threads, backend="remote",
        runtime=m.runtime, agent=agent.id, peak_memory_mb=m.peak_memory_mb,
        source="emulated" if emulated else "measured", rounds=m.rounds,
        round_medians_ms=tuple(m.round_medians_ms or (m.median_ms,)), ci_low_ms=m.ci_low_ms, ci_high_ms=m.ci_high_ms,
    )
    done = queue.complete(
        session, job_id, agent_id=body.agent_id, lease_id=body.lease_id, result=result.to_dict(), now=now
    )
    return job_view(done)


@router.post("/{job_id}/failure", dependencies=AGENTS)
def post_failure(
    job_id: JobIdPath, body: FailureReport, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> JobView:
    """The lease holder could not measure the job (the error is the agent's short class)."""
    check_agent(principal, body.agent_id)
    now = clock()
    registry.touch(session, body.agent_id, now=now)
    return job_view(queue.fail(
        session, job_id, agent_id=body.agent_id, lease_id=body.lease_id, error=body.error,
        retryable=body.retryable, now=now,
    ))


@router.post("/{job_id}/release", dependencies=AGENTS)
def release(job_id: JobIdPath, body: LeaseRef, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> JobView:
    """The lease holder gives the job back unmeasured (it is shutting down)."""
    check_agent(principal, body.agent_id)
    registry.touch(session, body.agent_id, now=clock())
    return job_view(queue.release(session, job_id, agent_id=body.agent_id, lease_id=body.lease_id))
