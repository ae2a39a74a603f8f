"""How long a home's readings are kept: read by members, set by those with ``manage``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from hearth.common.auth import CurrentCaller
from hearth.ingest.api.deps import HISTORY_ERRORS, DeviceSlug, HomeSlug, MetricSlug, StateDep
from hearth.ingest.models import RetentionIn, RetentionOut
from hearth.ingest.retention import RetentionService

__all__ = ["router"]

router = APIRouter(prefix="/telemetry/homes/{home}/retention", tags=["retention"])


def _retention(state: StateDep) -> RetentionService:
    return state.retention


RetentionDep = Annotated[RetentionService, Depends(_retention)]

_CHANGE = (
    "For callers the registry grants ``manage`` on the home. At most the 1-minute rollups' "
    "days (``invalid_retention`` beyond): rollups outlive raw readings. The storage job "
    "applies it within ``HEARTH_INGEST_MAINTENANCE_INTERVAL``."
)


@router.get("", summary="How long readings and rollups are kept", responses=HISTORY_ERRORS)
async def show(home: HomeSlug, caller: CurrentCaller, retention: RetentionDep) -> RetentionOut:
    """The home's retention in days, its overrides, and the rollups' days."""
    return await retention.show(caller, home)


@router.put("", summary="Set the home's retention", responses=HISTORY_ERRORS, description=_CHANGE)
async def set_home(
    home: HomeSlug, body: RetentionIn, caller: CurrentCaller, retention: RetentionDep
) -> RetentionOut:
    return await retention.set(caller, home, body.days)


@router.delete("", summary="Back to the default retention", responses=HISTORY_ERRORS)
async def clear_home(
    home: HomeSlug, caller: CurrentCaller, retention: RetentionDep
) -> RetentionOut:
    return await retention.clear(caller, home)


@router.put(
    "/devices/{device}",
    summary="A shorter retention for one device",
    responses=HISTORY_ERRORS,
    description=_CHANGE,
)
async def set_device(
    home: HomeSlug,
    device: DeviceSlug,
    body: RetentionIn,
    caller: CurrentCaller,
    retention: RetentionDep,
) -> RetentionOut:
    return await retention.set(caller, home, body.days, device=device)


@router.delete("/devices/{device}", summary="Remove a device's override", responses=HISTORY_ERRORS)
async def clear_device(
    home: HomeSlug, device: DeviceSlug, caller: CurrentCaller, retention: RetentionDep
) -> RetentionOut:
    return await retention.clear(caller, home, device=device)


@router.put(
    "/metrics/{metric}",
    summary="A shorter retention for one metric of every device",
    responses=HISTORY_ERRORS,
    description=_CHANGE,
)
async def set_metric(
    home: HomeSlug,
    metric: MetricSlug,
    body: RetentionIn,
    caller: CurrentCaller,
    retention: RetentionDep,
) -> RetentionOut:
    return await retention.set(caller, home, body.days, metric=metric)


@router.delete("/metrics/{metric}", summary="Remove a metric's override", responses=HISTORY_ERRORS)
async def clear_metric(
    home: HomeSlug, metric: MetricSlug, caller: CurrentCaller, retention: RetentionDep
) -> RetentionOut:
    return await retention.clear(caller, home, metric=metric)


@router.put(
    "/devices/{device}/metrics/{metric}",
    summary="A shorter retention for one metric of one device",
    responses=HISTORY_ERRORS,
    description=_CHANGE,
)
async def set_device_metric(
    home: HomeSlug,
    device: DeviceSlug,
    metric: MetricSlug,
    body: RetentionIn,
    caller: CurrentCaller,
    retention: RetentionDep,
) -> RetentionOut:
    return await retention.set(caller, home, body.days, device=device, metric=metric)


@router.delete(
    "/devices/{device}/metrics/{metric}",
    summary="Remove a device metric's override",
    responses=HISTORY_ERRORS,
)
async def clear_device_metric(
    home: HomeSlug,
    device: DeviceSlug,
    metric: MetricSlug,
    caller: CurrentCaller,
    retention: RetentionDep,
) -> RetentionOut:
    return await retention.clear(caller, home, device=device, metric=metric)
