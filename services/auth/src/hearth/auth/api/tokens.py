"""Token routes: the OAuth2 token endpoint, refresh, log out, log out everywhere."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, Response, status

from hearth.auth.api.deps import ApiKeysDep, ServiceClientsDep, ServiceDep, SessionUser
from hearth.auth.api_keys import is_api_key
from hearth.auth.errors import InvalidClient, InvalidGrant
from hearth.auth.models import RefreshRequest, ServiceTokenResponse, TokenResponse
from hearth.auth.throttle import address_key
from hearth.common.inputs import Text, require_form
from hearth.common.problems import Problem
from hearth.common.schemas import InputModel

__all__ = ["TokenForm", "router"]

router = APIRouter(prefix="/auth", tags=["tokens"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": Problem, "description": "Wrong credentials or refresh token (invalid_grant)"},
}
_TOKEN_ERRORS: dict[int | str, dict[str, object]] = {
    400: {
        "model": Problem,
        "description": "Wrong credentials or refresh token (invalid_grant), "
        "unknown or revoked API key or wrong client secret (invalid_client)",
    },
    429: {"model": Problem, "description": "Too many failed logins: see Retry-After"},
}


class TokenForm(InputModel):
    """The token request's form fields (RFC 6749 sections 4.3 and 6)."""

    grant_type: Literal["password", "refresh_token", "client_credentials"] = "password"
    username: Annotated[str, Text(100)] = ""
    password: Annotated[str, Text(256)] = ""
    refresh_token: Annotated[str, Text(256)] = ""
    scope: Annotated[str, Text(200)] = ""
    client_id: Annotated[str, Text(200)] = ""
    client_secret: Annotated[str, Text(200)] = ""


@router.post(
    "/token",
    summary="Log in, rotate a refresh token, or exchange an API key or client credentials",
    responses=_TOKEN_ERRORS,
    dependencies=[Depends(require_form)],  # a JSON body: 415 saying to send a form
)
async def token(
    form: Annotated[TokenForm, Form()],
    request: Request,
    service: ServiceDep,
    api_keys: ApiKeysDep,
    clients: ServiceClientsDep,
    response: Response,
) -> TokenResponse | ServiceTokenResponse:
    """The OAuth2 token endpoint, form-encoded (Swagger UI's Authorize uses it).

    - ``grant_type=password`` with ``username`` and ``password`` starts a new session
      (failed tries are throttled: 429 with ``Retry-After``);
    - ``grant_type=refresh_token`` with ``refresh_token`` rotates it;
    - ``grant_type=client_credentials`` with an API key (``hak_...``) as ``client_secret``
      mints a short-lived token with the key's scope and homes; with a service identity's
      ``client_id`` and ``client_secret`` it mints that service's token. Neither has a
      refresh token: exchange again when it expires.

    ``scope`` is ignored: a token carries everything its user, key or service may do.
    """
    response.headers.update(_NO_STORE)
    if form.grant_type == "refresh_token":
        if not form.refresh_token:
            raise InvalidGrant("refresh_token is required")
        return await service.refresh(form.refresh_token)
    if form.grant_type == "client_credentials":
        if is_api_key(form.client_secret):
            return await api_keys.exchange(form.client_secret)
        if not form.client_id or not form.client_secret:
            raise InvalidClient("client_id and client_secret (or an API key) are required")
        return clients.token(form.client_id, form.client_secret)
    if not form.username or not form.password:
        raise InvalidGrant("username and password are required")
    host = request.client.host if request.client else None
    return await service.login(form.username, form.password, address_key(host))


@router.post("/refresh", summary="Rotate a refresh token", responses=_ERRORS)
async def refresh(body: RefreshRequest, service: ServiceDep, response: Response) -> TokenResponse:
    """A new access token and the next refresh token of the same session.

    The token sent is used up; sending it again ends the whole session.
    """
    response.headers.update(_NO_STORE)
    return await service.refresh(body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out this session")
async def logout(body: RefreshRequest, service: ServiceDep) -> None:
    """End the session (refresh token family) of this refresh token.

    Answers 204 whether or not the token was known (RFC 7009). Access tokens already
    issued stay valid until they expire (about 15 minutes); log out everywhere to
    revoke them too.
    """
    await service.logout(body.refresh_token)


@router.post(
    "/logout-everywhere",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out every session of mine",
)
async def logout_everywhere(user: SessionUser, service: ServiceDep) -> None:
    """Revoke every refresh token and every access token issued to me so far."""
    await service.logout_everywhere(user.id)
