"""A metric's readings: raw points, or one aggregate per bucket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hearth.common.auth import CurrentCaller
from hearth.common.inputs import page_size
from hearth.ingest.api.deps import (
    HISTORY_ERRORS,
    DeviceSlug,
    HistoryDep,
    HomeSlug,
    MetricSlug,
    TimeRange,
)
from hearth.ingest.history import Bucket, SeriesSource
from hearth.ingest.models import Aggregate, SeriesOut

__all__ = ["MAX_RAW_POINTS", "router"]

router = APIRouter(prefix="/telemetry/homes/{home}", tags=["history"])

MAX_RAW_POINTS = 10_000
"""The most raw points one answer holds (``limit``)."""


@router.get(
    "/devices/{device}/metrics/{metric}",
    summary="A metric's readings, raw or in buckets",
    responses=HISTORY_ERRORS,
    response_model_by_alias=True,
)
async def read_series(
    home: HomeSlug,
    device: DeviceSlug,
    metric: MetricSlug,
    caller: CurrentCaller,
    history: HistoryDep,
    span: Annotated[TimeRange, Depends()],
    bucket: Annotated[
        Bucket | None,
        Query(
            description="Bucket width; none for raw points. 1d is a calendar day in the "
            "home's time zone."
        ),
    ] = None,
    agg: Annotated[Aggregate, Query(description="How a bucket's readings are combined.")] = (
        Aggregate.AVG
    ),
    limit: Annotated[
        int, page_size(MAX_RAW_POINTS), Query(description="Most raw points answered.")
    ] = 1000,
    source: Annotated[
        SeriesSource,
        Query(
            description="auto: buckets from the 1-minute or 1-hour rollups when the bucket "
            "and from/to allow (the answer's 'source' says which); raw: from raw readings."
        ),
    ] = SeriesSource.AUTO,
) -> SeriesOut:
    """Readings of one metric from ``from`` (inclusive) to ``to`` (exclusive).

    Bounds: from..to spans at most 400 days (``HEARTH_INGEST_HISTORY_MAX_RANGE_DAYS``)
    and a bucketed answer holds at most 10,000 buckets
    (``HEARTH_INGEST_HISTORY_MAX_POINTS``): beyond, 422 ``range_too_large``. Raw answers
    hold at most ``limit`` points (10,000 at most); ``truncated`` says more were there.
    An undeclared metric or unknown device is 404; a home that is not yours, 403.
    """
    return await history.series(
        caller,
        home,
        device,
        metric,
        start=span.start,
        end=span.end,
        bucket=bucket,
        agg=agg,
        limit=limit,
        source=source,
    )
