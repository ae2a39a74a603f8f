"""User routes: sign-up, myself, lookup by username, and the admin's user management."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from hearth.auth.api.deps import AdminUser, CurrentUser, ServiceDep, SessionUser, SettingsDep
from hearth.auth.models import (
    PasswordChange,
    UserAdminUpdate,
    UserBatchCreate,
    UserCreate,
    UserId,
    UserPublic,
    UserSignup,
    UserUpdate,
)
from hearth.common.errors import BadRequest
from hearth.common.inputs import Offset, page_size
from hearth.common.problems import Problem
from hearth.common.usernames import USERNAME_PATTERN

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["users"])

_AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No valid access token"},
}
_ADMIN_ERRORS: dict[int | str, dict[str, object]] = {
    **_AUTH_ERRORS,
    403: {"model": Problem, "description": "Not an admin"},
}


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    summary="Create my account (only when open sign-up is on)",
    responses={403: {"model": Problem}, 409: {"model": Problem}},
)
async def signup(body: UserSignup, service: ServiceDep) -> UserPublic:
    """Open sign-up: the first account made this way on an empty platform is an admin."""
    return UserPublic.of(await service.signup(body))


@router.get("/users/me", summary="Who am I", responses=_AUTH_ERRORS)
async def read_me(user: CurrentUser) -> UserPublic:
    """The current user."""
    return UserPublic.of(user)


@router.patch("/users/me", summary="Update my profile", responses=_AUTH_ERRORS)
async def update_me(body: UserUpdate, user: SessionUser, service: ServiceDep) -> UserPublic:
    """Change my display name."""
    return UserPublic.of(await service.update_self(user.id, body))


@router.post(
    "/users/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change my password",
    responses={**_AUTH_ERRORS, 400: {"model": Problem}},
)
async def change_password(body: PasswordChange, user: SessionUser, service: ServiceDep) -> None:
    """Change my password; every session and token of mine ends (log in again)."""
    await service.change_password(user.id, body)


@router.get(
    "/users/lookup",
    summary="The id of a user, by exact username",
    responses={**_AUTH_ERRORS, 404: {"model": Problem}},
)
async def lookup(
    username: Annotated[str, Query(pattern=f"^{USERNAME_PATTERN}$")],
    _user: CurrentUser,
    service: ServiceDep,
) -> UserId:
    """Only the id (e.g. for the registry adding a member); 404 when there is no such user."""
    return UserId(id=await service.lookup(username))


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (admin)",
    responses={**_ADMIN_ERRORS, 409: {"model": Problem}},
)
async def create_user(body: UserCreate, _admin: AdminUser, service: ServiceDep) -> UserPublic:
    """Create one user with a password the admin hands over."""
    (user,) = await service.create_users([body])
    return UserPublic.of(user)


@router.post(
    "/users/batch",
    status_code=status.HTTP_201_CREATED,
    summary="Create many users at once (admin)",
    responses={**_ADMIN_ERRORS, 400: {"model": Problem}, 409: {"model": Problem}},
)
async def create_users(
    body: UserBatchCreate, _admin: AdminUser, service: ServiceDep, settings: SettingsDep
) -> list[UserPublic]:
    """Create a classroom in one call: every user, or none (409 lists taken usernames)."""
    if len(body.users) > settings.max_batch:
        raise BadRequest(f"at most {settings.max_batch} users per batch")
    return [UserPublic.of(user) for user in await service.create_users(body.users)]


@router.get("/users", summary="List users (admin)", responses=_ADMIN_ERRORS)
async def list_users(
    _admin: AdminUser,
    service: ServiceDep,
    offset: Annotated[Offset, Query()] = 0,
    limit: Annotated[int, page_size(500), Query()] = 100,
) -> list[UserPublic]:
    """Users ordered by username, ``limit`` at a time from ``offset``."""
    users = await service.list_users(offset=offset, limit=limit)
    return [UserPublic.of(user) for user in users]


@router.get(
    "/users/{user_id}",
    summary="Read a user (admin)",
    responses={**_ADMIN_ERRORS, 404: {"model": Problem}},
)
async def read_user(user_id: uuid.UUID, _admin: AdminUser, service: ServiceDep) -> UserPublic:
    """One user."""
    return UserPublic.of(await service.get_user(user_id))


@router.patch(
    "/users/{user_id}",
    summary="Set a user's roles, disable or enable them (admin)",
    responses={
        **_ADMIN_ERRORS,
        400: {"model": Problem},
        404: {"model": Problem},
        409: {"model": Problem, "description": "The last enabled admin (last_admin)"},
    },
)
async def update_user(
    user_id: uuid.UUID, body: UserAdminUpdate, admin: AdminUser, service: ServiceDep
) -> UserPublic:
    """Disabling a user or removing their admin role revokes their tokens at once.

    The last enabled admin can be neither disabled nor demoted (409 ``last_admin``).
    """
    return UserPublic.of(await service.admin_update(admin.id, user_id, body))
