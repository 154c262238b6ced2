"""Fleet statistics: job counts by state, live agents by device tag."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends

from evaluators.fleet import queue, registry
from evaluators.fleet.auth import REQUESTER
from evaluators.fleet.dependencies import ClockDep, SessionDep, SettingsDep, allow
from evaluators.fleet.schemas import FleetStats

router = APIRouter(tags=["stats"], dependencies=[Depends(allow(REQUESTER))])


@router.get("/stats")
def stats(session: SessionDep, settings: SettingsDep, clock: ClockDep) -> FleetStats:
    """Job counts by state and live agents by device tag."""
    live = registry.list_agents(
        session, device_tag=None, live_only=True, now=clock(), live_seconds=settings.live_seconds
    )
    return FleetStats(jobs=queue.count_by_state(session), live_agents=dict(Counter(a.device_tag for a in live)))
