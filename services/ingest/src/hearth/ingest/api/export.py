"""A home's readings as one streamed file (CSV or NDJSON)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from hearth.common.auth import CurrentCaller
from hearth.common.inputs import Slug
from hearth.ingest.api.deps import HISTORY_ERRORS, HistoryDep, HomeSlug, TimeRange
from hearth.ingest.history import EXPORT_MEDIA_TYPES, ExportFormat
from hearth.ingest.openapi_examples import EXPORT

__all__ = ["router"]

router = APIRouter(prefix="/telemetry/homes/{home}", tags=["history"])


@router.get(
    "/export",
    summary="Export readings as CSV or NDJSON (streamed)",
    responses={
        **HISTORY_ERRORS,
        200: {
            "description": "device,metric,ts,value per line (CSV with a header, or NDJSON)",
            "content": {media: EXPORT[media] for media in EXPORT_MEDIA_TYPES.values()},
        },
    },
    response_class=StreamingResponse,
)
async def export(
    home: HomeSlug,
    caller: CurrentCaller,
    history: HistoryDep,
    span: Annotated[TimeRange, Depends()],
    device: Annotated[Slug | None, Query(description="Only this device's.")] = None,
    metric: Annotated[Slug | None, Query(description="Only this metric's.")] = None,
    format: Annotated[ExportFormat, Query(description="csv or ndjson.")] = ExportFormat.CSV,
) -> StreamingResponse:
    """Every reading of the home from ``from`` to ``to`` (at most 3,660 days,
    ``HEARTH_INGEST_EXPORT_MAX_RANGE_DAYS``), ordered by device, metric and time. Streamed
    from a database cursor: memory stays constant whatever the size. The CSV is what
    ``POST .../import`` reads."""
    await history.check_export(caller, home, span.start, span.end)
    body = history.export(
        home, start=span.start, end=span.end, device=device, metric=metric, fmt=format
    )
    filename = f"{home}-telemetry.{format.value}"
    return StreamingResponse(
        body,
        media_type=EXPORT_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
