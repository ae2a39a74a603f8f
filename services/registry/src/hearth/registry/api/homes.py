"""Home routes: create (the creator owns it), list mine (admins: all), read, update."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hearth.common.auth import CurrentCaller
from hearth.registry.api.deps import READ_ERRORS, WRITE_ERRORS, ServiceDep
from hearth.registry.api.params import HomeSlug
from hearth.registry.models import HomeCreate, HomePublic, HomeUpdate

__all__ = ["router"]

router = APIRouter(prefix="/registry/homes", tags=["homes"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a home (I become its owner)",
    responses=WRITE_ERRORS,
)
async def create_home(
    body: HomeCreate, caller: CurrentCaller, service: ServiceDep, response: Response
) -> HomePublic:
    """Create a home with an immutable slug; 409 when the slug is taken."""
    home = await service.create_home(caller, body)
    response.headers["Location"] = f"/registry/homes/{home.slug}"
    return home


@router.get("", summary="My homes (an admin sees every home)", responses=READ_ERRORS)
async def list_homes(caller: CurrentCaller, service: ServiceDep) -> list[HomePublic]:
    """The homes I belong to, with my role in each, by slug."""
    return await service.list_homes(caller)


@router.get("/{home}", summary="Read a home", responses=READ_ERRORS)
async def read_home(home: HomeSlug, caller: CurrentCaller, service: ServiceDep) -> HomePublic:
    """One of my homes."""
    return await service.get_home(caller, home)


@router.patch("/{home}", summary="Rename a home or change its time zone", responses=WRITE_ERRORS)
async def update_home(
    home: HomeSlug, body: HomeUpdate, caller: CurrentCaller, service: ServiceDep
) -> HomePublic:
    """Owners (and admins) change the name or the time zone; the slug never changes."""
    return await service.update_home(caller, home, body)
