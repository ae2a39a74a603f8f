"""Device routes: list, read, add (the type fills capabilities), update, delete (tombstone)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hearth.common.auth import CurrentCaller
from hearth.registry.api.deps import READ_ERRORS, WRITE_ERRORS, ServiceDep
from hearth.registry.api.params import DeviceSlug, HomeSlug
from hearth.registry.models import DeviceCreate, DevicePublic, DeviceUpdate

__all__ = ["router"]

router = APIRouter(prefix="/registry/homes/{home}/devices", tags=["devices"])

_CREATE_ERRORS: dict[int | str, dict[str, object]] = {
    **WRITE_ERRORS,
    409: {"description": "The slug is used, or was used by a deleted device, in this home"},
}


@router.get("", summary="The devices of a home", responses=READ_ERRORS)
async def list_devices(
    home: HomeSlug, caller: CurrentCaller, service: ServiceDep
) -> list[DevicePublic]:
    """Every live device of the home, by slug."""
    return await service.list_devices(caller, home)


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
) -> DevicePublic:
    """Owners add a device; its type's catalogue entry fills the capabilities not given."""
    device = await service.create_device(caller, home, body)
    response.headers["Location"] = f"/registry/homes/{home}/devices/{device.slug}"
    return device


@router.get("/{device}", summary="Read a device", responses=READ_ERRORS)
async def read_device(
    home: HomeSlug, device: DeviceSlug, caller: CurrentCaller, service: ServiceDep
) -> DevicePublic:
    """One live device."""
    return await service.get_device(caller, home, device)


@router.patch("/{device}", summary="Change a device", responses=WRITE_ERRORS)
async def update_device(
    home: HomeSlug,
    device: DeviceSlug,
    body: DeviceUpdate,
    caller: CurrentCaller,
    service: ServiceDep,
) -> DevicePublic:
    """Owners change the name, area, gateway (``null`` clears it), interval or capabilities."""
    return await service.update_device(caller, home, device, body)


@router.delete(
    "/{device}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a device",
    responses=WRITE_ERRORS,
)
async def delete_device(
    home: HomeSlug, device: DeviceSlug, caller: CurrentCaller, service: ServiceDep
) -> None:
    """Owners delete a device; its slug stays taken in this home forever (a tombstone)."""
    await service.delete_device(caller, home, device)
