"""API keys for app developers: create (shown once), list, revoke, exchange for a token.

A key reads ``hak_<key id, 32 hex>_<secret, 43 URL-safe characters>``; only the
SHA-256 of the secret is stored (fine for 256 random bits), compared in constant time.
Exchanging a live key (``grant_type=client_credentials`` with the key as
``client_secret``) mints a short-lived access token with the key's scope and homes
(:meth:`~hearth.auth.issuer.TokenIssuer.api_key_token`) and records ``last_used_at``; a
revoked key, or a key of a disabled user, mints nothing. API keys never leave auth:
other services only ever see the tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

from hearth.auth.errors import ApiKeyNotFound, InvalidClient, TooManyApiKeys
from hearth.auth.issuer import TokenIssuer
from hearth.auth.models import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ServiceTokenResponse,
)
from hearth.auth.repository import AuthRepository
from hearth.common.clock import utc_now
from hearth.common.db import Transactions

__all__ = ["API_KEY_PREFIX", "ApiKeyService", "is_api_key"]

API_KEY_PREFIX = "hak_"
_KEY = re.compile(r"hak_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")


def is_api_key(value: str) -> bool:
    """Whether ``value`` looks like an API key (its shape, not its validity)."""
    return value.startswith(API_KEY_PREFIX)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class ApiKeyService:
    """A user's API keys, and their exchange for access tokens."""

    def __init__(
        self,
        transactions: Transactions[AuthRepository],
        issuer: TokenIssuer,
        *,
        max_per_user: int = 50,
    ) -> None:
        self._transactions = transactions
        self._issuer = issuer
        self._max_per_user = max_per_user

    async def create(self, user_id: uuid.UUID, data: ApiKeyCreate) -> ApiKeyCreated:
        """A new key of the user's; the response is the only time its secret is shown."""
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            user_id=user_id,
            name=data.name,
            secret_hash=_hash(secret),
            scopes=sorted(set(data.scopes)),
            homes=None if data.homes is None else sorted(set(data.homes)),
        )
        async with self._transactions() as repo:
            await repo.lock_user(user_id)
            if await repo.count_api_keys(user_id) >= self._max_per_user:
                raise TooManyApiKeys(f"at most {self._max_per_user} live API keys: revoke one")
            repo.add(key)
            await repo.commit()
        public = ApiKeyPublic.of(key)
        return ApiKeyCreated(**public.model_dump(), key=f"{API_KEY_PREFIX}{key.id.hex}_{secret}")

    async def list_keys(self, user_id: uuid.UUID) -> list[ApiKeyPublic]:
        """The user's keys, newest first (revoked ones too, marked)."""
        async with self._transactions() as repo:
            keys = await repo.api_keys_of(user_id)
        return [ApiKeyPublic.of(key) for key in keys]

    async def revoke(self, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Revoke one of the user's keys: it mints no more tokens."""
        async with self._transactions() as repo:
            key = await repo.get_api_key(key_id, for_update=True)
            if key is None or key.user_id != user_id:
                raise ApiKeyNotFound("you have no API key with this id")
            if key.revoked_at is None:
                key.revoked_at = utc_now()
                repo.add(key)
                await repo.commit()

    async def exchange(self, presented: str) -> ServiceTokenResponse:
        """A short-lived access token for a live key; :class:`InvalidClient` otherwise."""
        match = _KEY.fullmatch(presented)
        if match is None:
            raise InvalidClient("this is not an API key")
        key_id, secret = uuid.UUID(hex=match.group(1)), match.group(2)
        async with self._transactions() as repo:
            key = await repo.get_api_key(key_id, for_update=True)
            if key is None or not hmac.compare_digest(key.secret_hash, _hash(secret)):
                raise InvalidClient("unknown API key")
            if key.revoked_at is not None:
                raise InvalidClient("this API key is revoked")
            user = await repo.get_user(key.user_id)
            if user is None or user.disabled:
                raise InvalidClient("the API key's user is disabled")
            key.last_used_at = utc_now()
            repo.add(key)
            await repo.commit()
        access = self._issuer.api_key_token(
            user.id, user.roles, key_id=key.id, scopes=key.scopes, homes=key.homes
        )
        return ServiceTokenResponse(
            access_token=access.token, expires_in=access.expires_in, scope=access.scope
        )
