"""FastAPI dependencies that authenticate a request's bearer token.

Routes read as a list of needs::

    @router.get("/homes")
    async def list_homes(caller: CurrentCaller) -> ...

    @router.post("/commands", dependencies=[require_scope("control")])
    async def send(caller: CurrentCaller) -> ...

The app's :class:`~hearth.common.tokens.TokenVerifier` is the one
:func:`hearth.common.web.create_service_app` keeps in the app's parts. A missing or
refused token answers 401 problem details with a ``WWW-Authenticate: Bearer``
challenge; a missing scope answers 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hearth.common.errors import Forbidden, InsufficientScope, TokenMissing
from hearth.common.tokens import Caller, TokenVerifier
from hearth.common.web import app_parts

__all__ = [
    "AdminCaller",
    "CurrentCaller",
    "current_caller",
    "get_token_verifier",
    "require_admin",
    "require_scope",
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from auth (EdDSA-signed JWT).",
)


def get_token_verifier(request: Request) -> TokenVerifier:
    """The verifier of the app serving ``request`` (made by ``create_service_app``)."""
    return app_parts(request.app).token_verifier


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller proven by the request's ``Authorization: Bearer`` token."""
    if credentials is None or not credentials.credentials:
        raise TokenMissing("this needs an access token: Authorization: Bearer <token>")
    caller = await get_token_verifier(request).verify(credentials.credentials)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
"""The authenticated caller of a route (401 when there is none)."""


def require_scope(*scopes: str) -> Any:
    """A dependency refusing (403) a caller whose token lacks any of ``scopes``.

    Use in ``dependencies=[require_scope("control")]`` or as a parameter
    ``caller: Annotated[Caller, require_scope("control")]``.
    """

    async def check(caller: CurrentCaller) -> Caller:
        for scope in scopes:
            if not caller.has_scope(scope):
                raise InsufficientScope(scope)
        return caller

    return Depends(check)


async def _admin(caller: CurrentCaller) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this needs the admin role")
    return caller


def require_admin() -> Any:
    """A dependency refusing (403) a caller without the ``admin`` role."""
    return Depends(_admin)


AdminCaller = Annotated[Caller, Depends(_admin)]
"""The authenticated caller of a route that only admins may use (401, else 403)."""
