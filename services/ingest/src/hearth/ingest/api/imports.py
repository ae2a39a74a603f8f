"""A CSV backfill of a home's readings (owners only)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from hearth.common.auth import CurrentCaller
from hearth.common.problems import Problem
from hearth.ingest.api.deps import HISTORY_ERRORS, HistoryDep, HomeSlug
from hearth.ingest.history import body_lines
from hearth.ingest.models import ImportReport
from hearth.ingest.openapi_examples import CSV

__all__ = ["router"]

router = APIRouter(prefix="/telemetry/homes/{home}", tags=["history"])


@router.post(
    "/import",
    summary="Backfill readings from a CSV file",
    responses={
        **HISTORY_ERRORS,
        413: {"model": Problem, "description": "too_large: a body over 16 MiB"},
        422: {
            "model": Problem,
            "description": "invalid_import: not a CSV with the header device,metric,ts,value",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV}},
        }
    },
)
async def import_csv(
    home: HomeSlug, caller: CurrentCaller, history: HistoryDep, request: Request
) -> ImportReport:
    """Store readings with their device timestamps (which may be years old) for callers
    with ``manage`` on the home. Body: ``text/csv`` with the header
    ``device,metric,ts,value`` (what the export writes); each line's device and metric
    must be declared in the registry. The answer counts lines, stored readings and those
    already stored, and lists the first 100 refused lines with their number and reason.
    Importing the same file again stores nothing twice."""
    body = await request.body()
    return await history.import_csv(caller, home, body_lines(body))
