"""Device routes: list, read, add (with its broker login), update (disable), delete
(tombstone), rotate the credentials, the config download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hearth.common.auth import CurrentCaller
from hearth.registry.api.deps import READ_ERRORS, WRITE_ERRORS, ServiceDep
from hearth.registry.api.params import DeviceSlug, HomeSlug
from hearth.registry.catalogue import DeviceTypeName
from hearth.registry.device_config import ConfigFormat, render
from hearth.registry.models import (
    Area,
    DeviceCreate,
    DeviceDetail,
    DevicePublic,
    DeviceUpdate,
    DeviceWithCredentials,
)
from hearth.registry.openapi_examples import CONFIG_DOWNLOAD

__all__ = ["router"]

router = APIRouter(prefix="/registry/homes/{home}/devices", tags=["devices"])

_BROKER_ERRORS: dict[int | str, dict[str, object]] = {
    502: {"description": "The broker refused the login change (run a reconcile)"},
    503: {"description": "The broker did not take the login change in time; nothing changed"},
}
_CREATE_ERRORS: dict[int | str, dict[str, object]] = {
    **WRITE_ERRORS,
    409: {"description": "The slug is used, or was used by a deleted device, in this home"},
    **_BROKER_ERRORS,
}
_NO_STORE = "no-store"
"""Answers holding a device password are never cached."""


@router.get("", summary="The devices of a home", responses=READ_ERRORS)
async def list_devices(
    home: HomeSlug,
    caller: CurrentCaller,
    service: ServiceDep,
    online: Annotated[bool | None, Query(description="Only devices online (or not).")] = None,
    area: Annotated[Area | None, Query(description="Only devices in this area.")] = None,
    type: Annotated[DeviceTypeName | None, Query(description="Only devices of this type.")] = None,
) -> list[DevicePublic]:
    """Every live device of the home, by slug, with its presence; narrowed by the filters."""
    return await service.list_devices(caller, home, online=online, area=area, type=type)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a device",
    responses=_CREATE_ERRORS,
)
async def create_device(
    home: HomeSlug,
    body: DeviceCreate,
    caller: CurrentCaller,
    service: ServiceDep,
    response: Response,
) -> DeviceWithCredentials:
    """Owners add a device; its type's catalogue entry fills the capabilities not given.

    The device's broker login is created at once; its password is in ``credentials`` of
    this answer only (rotate it to see a new one).
    """
    device = await service.create_device(caller, home, body)
    response.headers["Location"] = f"/registry/homes/{home}/devices/{device.slug}"
    response.headers["Cache-Control"] = _NO_STORE
    return device


@router.get("/{device}", summary="Read a device", responses=READ_ERRORS)
async def read_device(
    home: HomeSlug, device: DeviceSlug, caller: CurrentCaller, service: ServiceDep
) -> DeviceDetail:
    """One live device with its presence and shadow: per property the reported state, the
    desired value (the last command's) and whether they differ (``mismatch``)."""
    return await service.get_device(caller, home, device)


@router.patch("/{device}", summary="Change a device", responses={**WRITE_ERRORS, **_BROKER_ERRORS})
async def update_device(
    home: HomeSlug,
    device: DeviceSlug,
    body: DeviceUpdate,
    caller: CurrentCaller,
    service: ServiceDep,
) -> DevicePublic:
    """Owners change the name, area, gateway (``null`` clears it), interval or capabilities;
    ``disabled: true`` refuses the broker login and disconnects the device at once."""
    return await service.update_device(caller, home, device, body)


@router.delete(
    "/{device}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a device",
    responses={**WRITE_ERRORS, **_BROKER_ERRORS},
)
async def delete_device(
    home: HomeSlug, device: DeviceSlug, caller: CurrentCaller, service: ServiceDep
) -> None:
    """Owners delete a device and its broker login (disconnecting it); its slug stays taken
    in this home forever (a tombstone)."""
    await service.delete_device(caller, home, device)


@router.post(
    "/{device}/credentials",
    summary="Rotate the device's broker password",
    responses={**WRITE_ERRORS, **_BROKER_ERRORS},
)
async def rotate_credentials(
    home: HomeSlug,
    device: DeviceSlug,
    caller: CurrentCaller,
    service: ServiceDep,
    response: Response,
) -> DeviceWithCredentials:
    """Owners get a new password, shown in this answer only; the old one stops working and
    the broker disconnects the device at once."""
    rotated = await service.rotate_credentials(caller, home, device)
    response.headers["Cache-Control"] = _NO_STORE
    return rotated


@router.get(
    "/{device}/config",
    summary="The config download for the device's firmware",
    responses={
        **WRITE_ERRORS,
        200: {
            "description": "The config file (docs/devices.md defines each format)",
            "content": CONFIG_DOWNLOAD,
        },
    },
    response_class=Response,
)
async def device_config(
    home: HomeSlug,
    device: DeviceSlug,
    caller: CurrentCaller,
    service: ServiceDep,
    format: Annotated[
        ConfigFormat, Query(description="json, env, micropython or arduino")
    ] = ConfigFormat.JSON,
) -> Response:
    """Owners download everything the firmware needs, the password included (never cached)."""
    config = await service.device_config(caller, home, device)
    rendered = render(config, format)
    return Response(
        rendered.body,
        media_type=rendered.media_type,
        headers={
            "Cache-Control": _NO_STORE,
            "Content-Disposition": f'attachment; filename="{rendered.filename}"',
        },
    )
