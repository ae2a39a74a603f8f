"""Minting access tokens (EdDSA JWTs) and opaque refresh tokens.

Access token claims (design.md, "Identity and access"): ``iss aud sub iat exp jti
typ roles scope``; ``iat`` is a float with millisecond precision (truncated, so
``floor(iat * 1000)`` is the issuing millisecond); user tokens never carry ``homes``.
A token minted from an API key carries the key's scope, ``key`` (its id) and, when the
key is limited to listed homes, ``homes``; its ``roles`` hold ``admin`` only when the
user is an admin and the key has the ``admin`` scope. A service identity's token has
``sub`` = the service's name, no roles, and only the service's scopes.
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
        return self._sign(str(user_id), roles, scope_for(roles))

    def api_key_token(
        self,
        user_id: uuid.UUID,
        roles: Sequence[str],
        *,
        key_id: uuid.UUID,
        scopes: Sequence[str],
        homes: Sequence[str] | None,
    ) -> AccessToken:
        """A token minted from an API key: its scope and homes, ``admin`` only if both allow."""
        scope = " ".join(sorted(scopes))
        kept = [role for role in roles if role in scopes]
        extra: dict[str, object] = {"key": str(key_id)}
        if homes is not None:
            extra["homes"] = sorted(homes)
        return self._sign(str(user_id), kept, scope, extra)

    def service_token(self, service: str, scopes: Sequence[str]) -> AccessToken:
        """A service identity's token: ``sub`` is the service, no roles, its scopes only."""
        return self._sign(service, [], " ".join(sorted(scopes)))

    def _sign(
        self,
        subject: str,
        roles: Sequence[str],
        scope: str,
        extra: dict[str, object] | None = None,
    ) -> AccessToken:
        issued_ms = now_ms(self._clock)
        iat = issued_ms / 1000
        key = self._keys.signing_key()
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": iat,
            "exp": iat + self.ttl,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
            "roles": list(roles),
            "scope": scope,
            **(extra or {}),
        }
        token = jwt.encode(
            claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
        )
        return AccessToken(token, math.floor(self.ttl), scope, issued_ms)
