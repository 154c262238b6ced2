"""Enrolment, verification and revocation of per-agent credentials (``hwsearch_agent_credentials``).

An agent presents the enrolment token once and receives its own credential; from then on it
authenticates with that credential alone. Revoking an agent locks out that credential on its very
next request (nothing is cached) and gives its leased jobs back to the queue, without touching any
other agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from evaluators.fleet import credentials, queue, registry
from evaluators.fleet.tables import AgentCredentialRow, AgentRow


class NotEnrolled(LookupError):
    """The agent has no credential (it registered with the shared token, or never existed)."""


@dataclass(frozen=True)
class Verdict:
    """What a presented credential is worth.

    Attributes:
        agent_id: The agent it names, when it is genuine.
        refusal: Why it is refused (one line, for the 401 answer), or None when it is accepted.
    """

    agent_id: str | None
    refusal: str | None


def enrol(session: Session, info: dict[str, Any], *, now: float) -> tuple[AgentRow, str]:
    """Add an agent with a fresh credential; returns it and the credential (shown only here)."""
    agent = registry.register(session, info, now=now)
    credential, secret_sha256 = credentials.issue(agent.id)
    session.add(AgentCredentialRow(agent_id=agent.id, secret_sha256=secret_sha256, enrolled_at=now))
    session.flush()
    return agent, credential


def verify(session: Session, presented: str) -> Verdict:
    """Check a presented ``agent.<id>.<secret>`` credential against the stored hash.

    A revoked credential is named as such only when its secret is right, so the answer reveals
    nothing to someone who does not hold it.
    """
    parsed = credentials.parse(presented)
    if parsed is None:
        return Verdict(None, "wrong fleet token or agent credential")
    agent_id, secret = parsed
    row = session.get(AgentCredentialRow, agent_id)
    if not credentials.matches(secret, None if row is None else row.secret_sha256):
        return Verdict(None, "wrong fleet token or agent credential")
    assert row is not None
    if row.revoked_at is not None:
        return Verdict(agent_id, (
            f"agent {agent_id}'s credential was revoked (python -m evaluators.fleet agents revoke); "
            "this device is locked out until an operator enrols it again as a new agent"
        ))
    return Verdict(agent_id, None)


def revoke(session: Session, agent_id: str, *, now: float) -> int:
    """Revoke ``agent_id``'s credential and put its leased jobs back in the queue.

    Returns:
        How many leased jobs went back to the queue (their attempt does not count).

    Raises:
        NotEnrolled: When the agent holds no credential.
    """
    row = session.get(AgentCredentialRow, agent_id)
    if row is None:
        raise NotEnrolled(agent_id)
    session.execute(update(AgentCredentialRow).where(
        AgentCredentialRow.agent_id == agent_id, AgentCredentialRow.revoked_at.is_(None)
    ).values(revoked_at=now))
    registry.goodbye(session, agent_id)
    return queue.release_all(session, agent_id, note=f"agent {agent_id} was revoked while it held the job")


def states(session: Session, agent_ids: list[str]) -> dict[str, bool]:
    """For each enrolled agent among ``agent_ids``: whether it is revoked (others are absent)."""
    rows = session.execute(
        select(AgentCredentialRow.agent_id, AgentCredentialRow.revoked_at)
        .where(AgentCredentialRow.agent_id.in_(agent_ids))
    ).all()
    return {agent_id: revoked_at is not None for agent_id, revoked_at in rows}
