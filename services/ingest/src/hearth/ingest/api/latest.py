"""The newest reading of every metric of every device of a home."""

from __future__ import annotations

from fastapi import APIRouter

from hearth.common.auth import CurrentCaller
from hearth.ingest.api.deps import HISTORY_ERRORS, HistoryDep, HomeSlug
from hearth.ingest.models import LatestOut

__all__ = ["router"]

router = APIRouter(prefix="/telemetry/homes/{home}", tags=["history"])


@router.get("/latest", summary="The latest value of every metric", responses=HISTORY_ERRORS)
async def read_latest(home: HomeSlug, caller: CurrentCaller, history: HistoryDep) -> LatestOut:
    """What a dashboard needs on open: each (device, metric) with its newest time and value
    (at most 10,000 pairs)."""
    return await history.latest(caller, home)
