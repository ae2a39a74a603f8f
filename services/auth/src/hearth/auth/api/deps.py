"""What auth's routes need: its state, the service, the current user (checked in the
database), admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from hearth.auth.config import AuthSettings
from hearth.auth.keys import KeyRing
from hearth.auth.models import User
from hearth.auth.service import AuthService, require_admin_user
from hearth.auth.state import AuthState
from hearth.common.auth import AdminCaller, CurrentCaller
from hearth.common.web import state_dependency

__all__ = [
    "AdminUser",
    "CurrentUser",
    "KeyRingDep",
    "ServiceDep",
    "SettingsDep",
    "StateDep",
    "oauth2_password",
]

oauth2_password = OAuth2PasswordBearer(
    tokenUrl="/auth/token",
    scheme_name="password",
    description="Log in with a username and password (the OAuth2 password flow).",
    auto_error=False,
)
"""Declares the password flow in OpenAPI, so Swagger UI's Authorize logs in for real."""

StateDep = Annotated[AuthState, Depends(state_dependency(AuthState))]
"""Everything the app was built with (:class:`~hearth.auth.state.AuthState`)."""


def _service(state: StateDep) -> AuthService:
    return state.service


def _settings(state: StateDep) -> AuthSettings:
    return state.settings


def _ring(state: StateDep) -> KeyRing:
    return state.key_ring


ServiceDep = Annotated[AuthService, Depends(_service)]
SettingsDep = Annotated[AuthSettings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_ring)]


async def _current_user(
    caller: CurrentCaller,
    service: ServiceDep,
    _swagger: Annotated[str | None, Depends(oauth2_password)],
) -> User:
    return await service.authenticate(caller)


async def _admin_user(
    caller: AdminCaller,
    service: ServiceDep,
    _swagger: Annotated[str | None, Depends(oauth2_password)],
) -> User:
    return require_admin_user(await service.authenticate(caller))


CurrentUser = Annotated[User, Depends(_current_user)]
"""The user behind the bearer token: verified, not disabled, not revoked (in the database)."""
AdminUser = Annotated[User, Depends(_admin_user)]
"""The current user, who must be an admin by token and by the database (else 403)."""
