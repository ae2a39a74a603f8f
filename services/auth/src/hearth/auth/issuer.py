"""Minting access tokens (EdDSA JWTs) and opaque refresh tokens.

Access token claims (design.md, "Identity and access"): ``iss aud sub iat exp jti
typ roles scope``; ``iat`` is a float with millisecond precision (truncated, so
``floor(iat * 1000)`` is the issuing millisecond); user tokens never carry ``homes``.
Refresh tokens are 256 random bits, URL-safe; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jwt

from hearth.auth.keys import KeyRing
from hearth.common.tokens import ACCESS_TYPE, ALGORITHM

__all__ = [
    "AccessToken",
    "TokenIssuer",
    "hash_refresh_token",
    "new_refresh_token",
    "now_ms",
    "scope_for",
]

_REFRESH_PREFIX = "hrt_"


def now_ms(clock: Callable[[], float] = time.time) -> int:
    """The current epoch time in whole milliseconds (the unit of revocation marks)."""
    return math.floor(clock() * 1000)


def scope_for(roles: Sequence[str]) -> str:
    """Everything a user may do: ``read control``, plus ``admin`` for admins."""
    return "read control admin" if "admin" in roles else "read control"


def new_refresh_token() -> str:
    """A new opaque refresh token (``hrt_`` + 43 URL-safe characters)."""
    return _REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """The stored form of a refresh token: SHA-256 hex (fine for 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AccessToken:
    """A minted access token with the facts the token response needs."""

    token: str
    expires_in: int
    scope: str
    issued_at_ms: int


class TokenIssuer:
    """Signs access tokens with the key ring's current key."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._clock = clock

    def access_token(self, user_id: uuid.UUID, roles: Sequence[str]) -> AccessToken:
        """A signed access token for ``user_id`` with its roles and the scope they give."""
        issued_ms = now_ms(self._clock)
        iat = issued_ms / 1000
        scope = scope_for(roles)
        key = self._keys.signing_key()
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": iat,
            "exp": iat + self.ttl,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
            "roles": list(roles),
            "scope": scope,
        }
        token = jwt.encode(
            claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
        )
        return AccessToken(token, math.floor(self.ttl), scope, issued_ms)
