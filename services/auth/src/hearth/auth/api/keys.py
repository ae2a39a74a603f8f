"""The JWKS (the public keys access tokens are verified with), and rotating the signing key."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hearth.auth.api.deps import AdminUser, KeyRingDep, KeyStoreDep
from hearth.auth.models import JsonWebKeySet, RotatedKey
from hearth.common.problems import Problem

__all__ = ["router"]

router = APIRouter(tags=["keys"])


@router.get("/.well-known/jwks.json", summary="The token signing keys (JWKS)")
async def jwks(ring: KeyRingDep, response: Response) -> JsonWebKeySet:
    """Every published Ed25519 public key with its ``kid`` (RFC 7517, RFC 8037)."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return ring.jwks()


@router.post(
    "/auth/keys/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="Add a new signing key now (admin)",
    responses={401: {"model": Problem}, 403: {"model": Problem}},
)
async def rotate(_admin: AdminUser, store: KeyStoreDep) -> RotatedKey:
    """Add a successor key: published in the JWKS at once, signing after the publish delay.

    The old key stays in the JWKS until every token it signed has expired.
    """
    return await store.rotate()
