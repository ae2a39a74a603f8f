"""What auth's routes need: its state, the services, the current user (checked in the
database), the user of a login session, admins.

Account management (password, API keys, logging out everywhere, users, keys) needs a
login's token: a token minted from an API key or for a service identity is refused
there (403), whatever its scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from hearth.auth.api_keys import ApiKeyService
from hearth.auth.config import AuthSettings
from hearth.auth.keys import KeyRing
from hearth.auth.keystore import KeyStore
from hearth.auth.models import User
from hearth.auth.service import AuthService, require_admin_user
from hearth.auth.service_clients import ServiceClients
from hearth.auth.state import AuthState
from hearth.common.auth import AdminCaller, CurrentCaller
from hearth.common.errors import Forbidden
from hearth.common.tokens import Caller
from hearth.common.web import state_dependency

__all__ = [
    "AdminUser",
    "ApiKeysDep",
    "CurrentUser",
    "KeyRingDep",
    "KeyStoreDep",
    "ServiceClientsDep",
    "ServiceDep",
    "SessionUser",
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


def _api_keys(state: StateDep) -> ApiKeyService:
    return state.api_keys


def _service_clients(state: StateDep) -> ServiceClients:
    return state.service_clients


def _key_store(state: StateDep) -> KeyStore:
    return state.key_store


ServiceDep = Annotated[AuthService, Depends(_service)]
ApiKeysDep = Annotated[ApiKeyService, Depends(_api_keys)]
ServiceClientsDep = Annotated[ServiceClients, Depends(_service_clients)]
KeyStoreDep = Annotated[KeyStore, Depends(_key_store)]
SettingsDep = Annotated[AuthSettings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_ring)]


async def _current_user(
    caller: CurrentCaller,
    service: ServiceDep,
    _swagger: Annotated[str | None, Depends(oauth2_password)],
) -> User:
    return await service.authenticate(caller)


def _require_session(caller: Caller) -> Caller:
    if not caller.is_session:
        raise Forbidden("this needs a login's token, not an API key's or a service's")
    return caller


async def _session_user(
    caller: CurrentCaller,
    service: ServiceDep,
    _swagger: Annotated[str | None, Depends(oauth2_password)],
) -> User:
    return await service.authenticate(_require_session(caller))


async def _admin_user(
    caller: AdminCaller,
    service: ServiceDep,
    _swagger: Annotated[str | None, Depends(oauth2_password)],
) -> User:
    return require_admin_user(await service.authenticate(_require_session(caller)))


CurrentUser = Annotated[User, Depends(_current_user)]
"""The user behind the bearer token: verified, not disabled, not revoked (in the database)."""
SessionUser = Annotated[User, Depends(_session_user)]
"""The current user, whose token comes from a login (403 for API-key and service tokens)."""
AdminUser = Annotated[User, Depends(_admin_user)]
"""The current user, who must be an admin by token and by the database (else 403)."""
