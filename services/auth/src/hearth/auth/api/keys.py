"""The JWKS: the public keys access tokens are verified with."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hearth.auth.api.deps import KeyRingDep
from hearth.auth.models import JsonWebKeySet

__all__ = ["router"]

router = APIRouter(tags=["keys"])


@router.get("/.well-known/jwks.json", summary="The token signing keys (JWKS)")
async def jwks(ring: KeyRingDep, response: Response) -> JsonWebKeySet:
    """Every published Ed25519 public key with its ``kid`` (RFC 7517, RFC 8037)."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return ring.jwks()
