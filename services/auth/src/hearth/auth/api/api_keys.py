"""API key routes: create (the key is shown once), list, revoke; a login's token only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from hearth.auth.api.deps import ApiKeysDep, SessionUser
from hearth.auth.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from hearth.common.problems import Problem

__all__ = ["router"]

router = APIRouter(prefix="/auth/api-keys", tags=["api keys"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No valid access token"},
    403: {"model": Problem, "description": "Not a login's token (an API key's or a service's)"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (shown once)",
    responses={**_ERRORS, 409: {"model": Problem, "description": "Too many live keys"}},
)
async def create_api_key(body: ApiKeyCreate, user: SessionUser, keys: ApiKeysDep) -> ApiKeyCreated:
    """A named key with scopes (``read``, ``control``, ``admin``), optionally limited to
    ``homes``. ``key`` in the answer is the only copy: store it; exchange it at
    ``POST /auth/token`` (``grant_type=client_credentials``, ``client_secret=<key>``)."""
    return await keys.create(user.id, body)


@router.get("", summary="My API keys", responses=_ERRORS)
async def list_api_keys(user: SessionUser, keys: ApiKeysDep) -> list[ApiKeyPublic]:
    """Every key of mine, newest first, with when it was last used (never the secret)."""
    return await keys.list_keys(user.id)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    responses={**_ERRORS, 404: {"model": Problem}},
)
async def revoke_api_key(key_id: uuid.UUID, user: SessionUser, keys: ApiKeysDep) -> None:
    """The key mints no more tokens; tokens it minted expire on their own (minutes)."""
    await keys.revoke(user.id, key_id)
