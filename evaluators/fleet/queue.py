"""The job state machine, as SQLAlchemy statements that are atomic on SQLite and PostgreSQL.

Every transition is one ``UPDATE ... WHERE`` whose condition names the state it leaves (and, for
an agent's transitions, the lease it holds), checked by its row count: two agents, two
coordinators or a late duplicate can never both win. Claims pick the oldest queued job of a tag
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent claimers take different rows) and rely
on SQLite's single writer elsewhere.

Functions take the caller's session and the coordinator clock's ``now`` (epoch seconds) and never
commit: the caller's session scope does. A function that changes a job marks the session (see
:func:`changed`) so the coordinator can wake its long-polls after the commit.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Update, func, select, update
from sqlalchemy.orm import Session

from evaluators.fleet.protocol import CANCELLED, DONE, FAILED, LEASED, QUEUED
from evaluators.fleet.tables import AgentRow, JobRow

_CHANGED = "hwsearch.fleet.changed"


class JobNotFound(LookupError):
    """No job has that id."""


class LeaseConflict(Exception):
    """An agent named a lease that the job does not hold (any more): the request is refused."""


def new_id() -> str:
    """A fresh 32-hex-digit id (jobs and leases)."""
    return uuid.uuid4().hex


def changed(session: Session) -> bool:
    """Whether a function of this module changed a job in ``session``."""
    return bool(session.info.get(_CHANGED))


def _mark_changed(session: Session) -> None:
    session.info[_CHANGED] = True


def _run(session: Session, statement: Update) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    rowcount = int(result.rowcount)  # type: ignore[attr-defined]
    if rowcount:
        _mark_changed(session)
    return rowcount


def _held(job_id: str, agent_id: str, lease_id: str) -> Update:
    return update(JobRow).where(
        JobRow.id == job_id, JobRow.state == LEASED, JobRow.agent_id == agent_id,
        JobRow.lease_id == lease_id,
    )


def get_job(session: Session, job_id: str) -> JobRow:
    """The job ``job_id``, freshly read.

    Raises:
        JobNotFound: When there is none.
    """
    job = session.scalars(
        select(JobRow).where(JobRow.id == job_id).execution_options(populate_existing=True)
    ).one_or_none()
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def _conflict(session: Session, job_id: str, agent_id: str, action: str) -> LeaseConflict:
    job = get_job(session, job_id)
    if job.state == LEASED and job.agent_id != agent_id:
        why = f"it is leased to agent {job.agent_id} now (your lease expired)"
    elif job.state == LEASED:
        why = "it is leased to you under a newer lease"
    elif job.state == QUEUED:
        why = "it is back in the queue (your lease expired or you released it)"
    elif job.state == DONE:
        why = f"it is done already (result from agent {job.agent_id} accepted)"
    else:
        why = f"it is {job.state}" + (f": {job.error}" if job.error else "")
    return LeaseConflict(f"{action} refused for job {job_id}: {why}")


def enqueue(
    session: Session, *, device_tag: str, artifact_sha256: str, input_shape: list[int],
    settings: dict[str, Any], max_attempts: int, now: float, job_id: str | None = None,
) -> JobRow:
    """Queue a new job; it is claimable as soon as the caller commits.

    Raises:
        sqlalchemy.exc.IntegrityError: When a job ``job_id`` (chosen by the client) exists; the
            caller decides whether the request was a retry (see the jobs router).
    """
    job = JobRow(
        id=job_id or new_id(), device_tag=device_tag, artifact_sha256=artifact_sha256,
        input_shape_json=json.dumps(input_shape), settings_json=json.dumps(settings), state=QUEUED,
        attempts=0, max_attempts=max_attempts, created_at=now,
    )
    session.add(job)
    session.flush()
    _mark_changed(session)
    return job


def expire_leases(session: Session, *, now: float) -> int:
    """Put jobs whose lease ran out back in the queue, or fail them after their last attempt.

    Returns:
        How many jobs changed state.
    """
    expired = session.execute(
        select(JobRow.id, JobRow.lease_id, JobRow.agent_id, JobRow.attempts, JobRow.max_attempts)
        .where(JobRow.state == LEASED, JobRow.lease_expires_at < now)
    ).all()
    moved = 0
    for job_id, lease_id, agent_id, attempts, max_attempts in expired:
        lost = f"the lease expired on agent {agent_id} (no heartbeat: it crashed, was killed or lost its link)"
        if attempts >= max_attempts:
            values: dict[str, Any] = {
                "state": FAILED, "finished_at": now,
                "error": f"gave up after {attempts} of max_attempts={max_attempts} attempts; "
                         f"on the last one {lost}",
            }
        else:
            values = {"state": QUEUED, "note": f"attempt {attempts}/{max_attempts}: {lost}"}
        moved += _run(session, _held(job_id, agent_id, lease_id).values(
            lease_id=None, lease_expires_at=None, **values
        ))
    return moved


def claim(
    session: Session, *, agent_id: str, device_tag: str, lease_seconds: float, now: float
) -> JobRow | None:
    """Lease the oldest queued job of ``device_tag`` to ``agent_id``, or return None.

    Expired leases are swept first, so a job whose agent died is claimable again here.
    """
    expire_leases(session, now=now)
    oldest = (
        select(JobRow.id).where(JobRow.state == QUEUED, JobRow.device_tag == device_tag)
        .order_by(JobRow.created_at, JobRow.id).limit(1)
    )
    if session.execute(oldest).first() is None:
        return None
    lease_id = new_id()
    pick = oldest.with_for_update(skip_locked=True).scalar_subquery()
    won = _run(session, update(JobRow).where(JobRow.id == pick, JobRow.state == QUEUED).values(
        state=LEASED, agent_id=agent_id, lease_id=lease_id, lease_expires_at=now + lease_seconds,
        claimed_at=now, attempts=JobRow.attempts + 1,
    ))
    if won != 1:
        return None
    return session.scalars(
        select(JobRow).where(JobRow.lease_id == lease_id).execution_options(populate_existing=True)
    ).one()


def heartbeat(
    session: Session, job_id: str, *, agent_id: str, lease_id: str, lease_seconds: float, now: float
) -> float:
    """Extend the lease ``lease_id`` of ``agent_id`` on ``job_id``; returns the new expiry.

    A lease stays valid past its expiry until a sweep moves the job on, so a late heartbeat from
    a slow but live agent still counts.

    Raises:
        LeaseConflict: When the agent does not hold that lease (the job was cancelled, re-leased
            or finished): the agent must stop working on it.
        JobNotFound: When there is no such job.
    """
    expires = now + lease_seconds
    if _run(session, _held(job_id, agent_id, lease_id).values(lease_expires_at=expires)) != 1:
        raise _conflict(session, job_id, agent_id, "heartbeat")
    return expires


def complete(
    session: Session, job_id: str, *, agent_id: str, lease_id: str, result: dict[str, Any], now: float
) -> JobRow:
    """Store the result of ``job_id``: accepted once, from the lease holder only.

    Raises:
        LeaseConflict: For a second result, or one from an agent without the lease.
        JobNotFound: When there is no such job.
    """
    accepted = _run(session, _held(job_id, agent_id, lease_id).values(
        state=DONE, result_json=json.dumps(result), finished_at=now, lease_id=None,
        lease_expires_at=None,
    ))
    if accepted != 1:
        raise _conflict(session, job_id, agent_id, "result")
    session.execute(
        update(AgentRow).where(AgentRow.id == agent_id).values(jobs_done=AgentRow.jobs_done + 1)
    )
    return get_job(session, job_id)


def fail(
    session: Session, job_id: str, *, agent_id: str, lease_id: str, error: str, retryable: bool,
    now: float,
) -> JobRow:
    """Record that the lease holder could not measure ``job_id``.

    A retryable failure (e.g. a corrupted download) queues the job again while attempts remain;
    any other failure (the runtime rejected the model) fails it with ``error``.

    Raises:
        LeaseConflict: When the agent does not hold that lease.
        JobNotFound: When there is no such job.
    """
    job = get_job(session, job_id)
    attempt = f"attempt {job.attempts}/{job.max_attempts} on agent {agent_id}"
    if retryable and job.attempts < job.max_attempts:
        values: dict[str, Any] = {"state": QUEUED, "note": f"{attempt}: {error}"}
    else:
        values = {"state": FAILED, "finished_at": now, "error": f"{attempt}: {error}"}
    if _run(session, _held(job_id, agent_id, lease_id).values(
        lease_id=None, lease_expires_at=None, **values
    )) != 1:
        raise _conflict(session, job_id, agent_id, "failure report")
    if values["state"] == FAILED:
        session.execute(update(AgentRow).where(AgentRow.id == agent_id).values(
            jobs_failed=AgentRow.jobs_failed + 1
        ))
    return get_job(session, job_id)


def release(session: Session, job_id: str, *, agent_id: str, lease_id: str) -> JobRow:
    """Give a leased job back to the queue (an agent shutting down); the attempt does not count.

    Raises:
        LeaseConflict: When the agent does not hold that lease.
        JobNotFound: When there is no such job.
    """
    if _run(session, _held(job_id, agent_id, lease_id).values(
        state=QUEUED, lease_id=None, lease_expires_at=None, attempts=JobRow.attempts - 1,
        note=f"released by agent {agent_id} (it was shutting down)",
    )) != 1:
        raise _conflict(session, job_id, agent_id, "release")
    return get_job(session, job_id)


def release_all(session: Session, agent_id: str, *, note: str) -> int:
    """Give every job leased to ``agent_id`` back to the queue (the agent was revoked).

    Like :func:`release`, the attempt does not count: the job was not at fault.

    Returns:
        How many jobs went back.
    """
    return _run(session, update(JobRow).where(JobRow.state == LEASED, JobRow.agent_id == agent_id).values(
        state=QUEUED, lease_id=None, lease_expires_at=None, attempts=JobRow.attempts - 1, note=note,
    ))


def cancel(session: Session, job_id: str, *, reason: str, now: float) -> JobRow:
    """Cancel a queued or leased job (its agent learns it on the next heartbeat).

    A finished job is returned unchanged.

    Raises:
        JobNotFound: When there is no such job.
    """
    _run(session, update(JobRow).where(JobRow.id == job_id, JobRow.state.in_((QUEUED, LEASED))).values(
        state=CANCELLED, error=reason, finished_at=now, lease_id=None, lease_expires_at=None,
    ))
    return get_job(session, job_id)


def count_by_state(session: Session) -> dict[str, int]:
    """Number of jobs in each state."""
    rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all()
    return {state: int(n) for state, n in rows}
