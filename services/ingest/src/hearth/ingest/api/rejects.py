"""Why didn't my data arrive? The kept rejects of a home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from hearth.common.auth import CurrentCaller
from hearth.common.inputs import Slug, page_size
from hearth.ingest.api.deps import HISTORY_ERRORS, HistoryDep, HomeSlug, aware
from hearth.ingest.models import RejectOut

__all__ = ["router"]

router = APIRouter(prefix="/telemetry/homes/{home}", tags=["history"])


@router.get("/rejects", summary="Telemetry refused, and why", responses=HISTORY_ERRORS)
async def read_rejects(
    home: HomeSlug,
    caller: CurrentCaller,
    history: HistoryDep,
    device: Annotated[Slug | None, Query(description="Only this device's.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only those received since (default: a day ago).")
    ] = None,
    limit: Annotated[int, page_size(1000), Query(description="Most rejects answered.")] = 100,
) -> list[RejectOut]:
    """The newest kept rejects first: topic, reason, detail and the payload (as text when
    it is text, else base64). Rejects are kept at a bounded rate (10/s, burst 100 per
    replica by default); every reject is counted in ``/metrics`` and logged once per
    reason per device per minute."""
    start = aware(since, "since") or datetime.now(UTC) - timedelta(days=1)
    return await history.rejects(caller, home, device=device, since=start, limit=limit)
