"""Member routes: list, read, add by username (auth's lookup), change a role, remove."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from hearth.common.auth import CurrentCaller
from hearth.registry.api.deps import READ_ERRORS, WRITE_ERRORS, ServiceDep
from hearth.registry.api.params import HomeSlug
from hearth.registry.models import MemberAdd, MemberPublic, MemberUpdate

__all__ = ["router"]

router = APIRouter(prefix="/registry/homes/{home}/members", tags=["members"])


@router.get("", summary="The members of a home", responses=READ_ERRORS)
async def list_members(
    home: HomeSlug, caller: CurrentCaller, service: ServiceDep
) -> list[MemberPublic]:
    """Every member with their role, by username."""
    return await service.list_members(caller, home)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a member by username",
    responses={**WRITE_ERRORS, 503: {"description": "auth did not answer"}},
)
async def add_member(
    home: HomeSlug,
    body: MemberAdd,
    caller: CurrentCaller,
    service: ServiceDep,
    response: Response,
) -> MemberPublic:
    """Owners add a user (404 ``user_not_found`` when auth knows no such username)."""
    member = await service.add_member(caller, home, body)
    response.headers["Location"] = f"/registry/homes/{home}/members/{member.user_id}"
    return member


@router.get("/{user_id}", summary="Read a member", responses=READ_ERRORS)
async def read_member(
    home: HomeSlug, user_id: uuid.UUID, caller: CurrentCaller, service: ServiceDep
) -> MemberPublic:
    """One member of the home."""
    return await service.get_member(caller, home, user_id)


@router.patch("/{user_id}", summary="Change a member's role", responses=WRITE_ERRORS)
async def update_member(
    home: HomeSlug,
    user_id: uuid.UUID,
    body: MemberUpdate,
    caller: CurrentCaller,
    service: ServiceDep,
) -> MemberPublic:
    """Owners change a role; 409 ``last_owner`` when no owner would be left."""
    return await service.update_member(caller, home, user_id, body)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a member",
    responses=WRITE_ERRORS,
)
async def remove_member(
    home: HomeSlug, user_id: uuid.UUID, caller: CurrentCaller, service: ServiceDep
) -> None:
    """Owners remove a member; 409 ``last_owner`` when no owner would be left."""
    await service.remove_member(caller, home, user_id)
