"""JwksClient: auth's public signing keys, fetched over HTTP and cached by key id.

Keys are fetched from the JWKS URL (``.../.well-known/jwks.json``) and kept for
``cache_ttl`` seconds. A token naming a key id the cache does not hold triggers
one refresh (auth rotated its key), but refreshes forced that way are spaced at
least ``min_refresh_interval`` seconds apart, so a caller cycling made-up key
ids cannot make every replica hammer auth. Only Ed25519 public keys
(``kty: OKP``, ``crv: Ed25519``) are kept; anything else in the set is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hearth.common.errors import KeysUnavailable, UnknownKey
from hearth.common.http import ServiceClient

__all__ = ["JwksClient", "parse_jwks"]

logger = logging.getLogger(__name__)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_jwks(document: Any) -> dict[str, Ed25519PublicKey]:
    """The usable Ed25519 verification keys of a JWKS document, by key id.

    Keys that are not Ed25519 signing keys, have no ``kid``, or carry private
    material (``d``) are skipped with a warning rather than trusted.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS document is an object with a 'keys' list")
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            logger.warning("skipping a JWK without a key id")
            continue
        if "d" in jwk:
            logger.warning("skipping JWK %s: it carries private key material", kid)
            continue
        if (
            jwk.get("kty") != "OKP"
            or jwk.get("crv") != "Ed25519"
            or jwk.get("use", "sig") != "sig"
            or jwk.get("alg", "EdDSA") != "EdDSA"
            or not isinstance(jwk.get("x"), str)
        ):
            logger.info("skipping JWK %s: not an Ed25519 signing key", kid)
            continue
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))
        except (ValueError, binascii.Error):
            logger.warning("skipping JWK %s: its public key does not decode", kid)
    return keys


class JwksClient(ServiceClient):
    """Fetches and caches the signing keys an access token may be verified with.

    A :class:`~hearth.common.http.ServiceClient` of ``url`` (the network by default, or an
    ``httpx.MockTransport``/``httpx.ASGITransport`` given as ``transport`` in tests); not
    entered, each fetch opens and closes its own connection. ``clock`` is a monotonic
    clock, injectable so tests can step time.
    """

    name = "the JWKS"
    unavailable = KeysUnavailable

    def __init__(
        self,
        url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_ttl: float = 300.0,
        min_refresh_interval: float = 5.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(timeout=timeout, transport=transport)
        self.url = url
        self._cache_ttl = cache_ttl
        self._min_refresh_interval = min_refresh_interval
        self._clock = clock
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the JWKS was requested (for tests and metrics)."""

    def __repr__(self) -> str:
        return f"JwksClient({self.url!r}, keys={sorted(self._keys)})"

    @property
    def key_ids(self) -> frozenset[str]:
        """The key ids held now."""
        return frozenset(self._keys)

    async def get_key(self, kid: str) -> Ed25519PublicKey:
        """The public key with id ``kid``; refreshes when stale or when ``kid`` is new.

        Raises :class:`UnknownKey` when the key is not in the set even after the
        refresh a new key id is allowed, and :class:`KeysUnavailable` when no
        keys could be fetched at all.
        """
        if not self._is_stale() and kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            if self._is_stale():
                await self._refresh_keeping_stale()
            if kid not in self._keys and self._may_force_refresh():
                await self._refresh_keeping_stale()
            if kid in self._keys:
                return self._keys[kid]
            if self._fetched_at is None:
                raise KeysUnavailable("the signing keys could not be fetched")
            raise UnknownKey("the token was signed with an unknown key")

    async def refresh(self) -> None:
        """Fetch the key set now, replacing the cache; raises :class:`KeysUnavailable`."""
        self._attempted_at = self._clock()
        self.fetches += 1
        response = await self.request("GET", self.url)
        if response.status_code != 200:
            raise KeysUnavailable(f"fetching the JWKS failed: HTTP {response.status_code}")
        try:
            keys = parse_jwks(response.json())
        except ValueError as exc:
            raise KeysUnavailable(f"fetching the JWKS failed: {type(exc).__name__}") from exc
        self._keys = keys
        self._fetched_at = self._clock()
        logger.info("fetched JWKS", extra={"jwks_url": self.url, "key_ids": sorted(keys)})

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._cache_ttl

    def _may_force_refresh(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self._min_refresh_interval
        )

    async def _refresh_keeping_stale(self) -> None:
        """Refresh if allowed; on failure keep serving the keys already held."""
        if not self._may_force_refresh():
            return
        try:
            await self.refresh()
        except KeysUnavailable:
            if self._fetched_at is None:
                raise
            logger.warning("JWKS refresh failed; keeping the keys already held", exc_info=True)
