"""Agent administration on the database itself (``python -m evaluators.fleet agents ...``).

Works whether or not a coordinator runs: every coordinator reads the same tables on each request,
so a revocation counts on the revoked agent's very next request.
"""

from __future__ import annotations

import time

from evaluators.db import make_engine, session_scope
from evaluators.errors import HwsearchError
from evaluators.fleet import enrolment, registry
from evaluators.fleet.tables import AgentRow


def _state(revoked: bool | None) -> str:
    return {None: "shared-token", False: "enrolled", True: "REVOKED"}[revoked]


def list_agents(storage: str) -> str:
    """One line per agent, most recently seen first: id, tag, credential state, device."""
    engine = make_engine(storage)
    try:
        with session_scope(engine) as session:
            agents = registry.list_agents(session, device_tag=None, live_only=False, now=time.time(), live_seconds=0)
            revoked = enrolment.states(session, [agent.id for agent in agents])
            lines = [
                f"{agent.id}\t{agent.device_tag}\t{_state(revoked.get(agent.id))}\t"
                f"{agent.jobs_done} done\t{agent.device}"
                for agent in agents
            ]
    finally:
        engine.dispose()
    return "\n".join(["id\tdevice tag\tcredential\tjobs\tdevice", *lines]) if lines else "no agents registered"


def revoke_agent(storage: str, agent_id: str) -> str:
    """Revoke ``agent_id``; one line saying what happened.

    Raises:
        HwsearchError: When the agent does not exist or holds no credential of its own.
    """
    engine = make_engine(storage)
    try:
        with session_scope(engine) as session:
            if session.get(AgentRow, agent_id) is None:
                raise HwsearchError(f"no agent {agent_id!r} in {storage}",
                                    "list the agents with: python -m evaluators.fleet agents list")
            try:
                released = enrolment.revoke(session, agent_id, now=time.time())
            except enrolment.NotEnrolled as exc:
                raise HwsearchError(
                    f"agent {agent_id} holds no credential of its own (it registered with the shared fleet token)",
                    "rotate the fleet token instead, or run the coordinator with --enrol-token so agents enrol",
                ) from exc
    finally:
        engine.dispose()
    return (f"revoked agent {agent_id}: its next request is refused; {released} leased job(s) went back to the "
            "queue. If the device was stolen, also rotate the enrolment token (enrolled agents keep working).")
