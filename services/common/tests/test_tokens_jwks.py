"""JwksClient: caching by kid, refresh on key rotation, the refresh rate limit, outages.

Each test runs its own JWKS server over real HTTP (keys are swapped, so the
session server is left alone) and steps a fake monotonic clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hearth.common.errors import KeysUnavailable, UnknownKey
from hearth.common.tokens import JwksClient, TokenVerifier, parse_jwks
from hearth.testing.ports import free_port
from hearth.testing.tokens import TEST_ISSUER, JwksServer, SigningKey, TokenMinter

USER = "4f1c6a1e-2b7d-4c35-9d8e-0a1b2c3d4e5f"


class Clock:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def old_key() -> SigningKey:
    return SigningKey.generate("key-2025")


@pytest.fixture
def new_key() -> SigningKey:
    return SigningKey.generate("key-2026")


@pytest.fixture
def server(old_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([old_key]) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(server: JwksServer, clock: Clock, **options: Any) -> JwksClient:
    return JwksClient(server.url, clock=clock, **options)


async def test_keys_are_fetched_once_and_cached(
    server: JwksServer, clock: Clock, old_key: SigningKey
) -> None:
    jwks = make_client(server, clock, cache_ttl=300)
    key = await jwks.get_key(old_key.kid)
    assert key.public_bytes_raw() == old_key.private_key.public_key().public_bytes_raw()
    for _ in range(5):
        await jwks.get_key(old_key.kid)
    assert server.requests == 1
    assert jwks.key_ids == {old_key.kid}
    clock.now += 301  # the cache went stale
    await jwks.get_key(old_key.kid)
    assert server.requests == 2


async def test_key_rotation_is_picked_up_by_one_refresh(
    server: JwksServer, clock: Clock, old_key: SigningKey, new_key: SigningKey
) -> None:
    jwks = make_client(server, clock, min_refresh_interval=5)
    verifier = TokenVerifier(jwks, issuer=TEST_ISSUER)
    assert await verifier.verify(TokenMinter(old_key)(USER))
    server.set_keys([old_key, new_key])  # auth rotates
    clock.now += 6
    caller = await verifier.verify(TokenMinter(new_key)(USER))
    assert caller.user_id == USER
    assert server.requests == 2
    assert jwks.key_ids == {old_key.kid, new_key.kid}
    # Tokens of the old key still verify while it is published.
    assert await verifier.verify(TokenMinter(old_key)(USER))
    assert server.requests == 2


async def test_unknown_kids_cannot_make_it_hammer_the_jwks(
    server: JwksServer, clock: Clock, old_key: SigningKey
) -> None:
    jwks = make_client(server, clock, min_refresh_interval=5)
    await jwks.get_key(old_key.kid)
    clock.now += 10
    for attempt in range(50):  # an attacker cycling made-up kids
        with pytest.raises(UnknownKey):
            await jwks.get_key(f"made-up-{attempt}")
        clock.now += 0.01
    assert server.requests == 2  # the first fetch and one refresh, not 51
    clock.now += 5
    with pytest.raises(UnknownKey):
        await jwks.get_key("made-up-again")
    assert server.requests == 3  # one more once the interval has passed
    # Known keys are served from the cache all along.
    await jwks.get_key(old_key.kid)
    assert server.requests == 3


async def test_concurrent_lookups_of_a_new_kid_share_one_fetch(
    server: JwksServer, clock: Clock, old_key: SigningKey, new_key: SigningKey
) -> None:
    jwks = make_client(server, clock)
    await jwks.get_key(old_key.kid)
    server.set_keys([old_key, new_key])
    clock.now += 60
    keys = await asyncio.gather(*(jwks.get_key(new_key.kid) for _ in range(20)))
    assert len({key.public_bytes_raw() for key in keys}) == 1
    assert server.requests == 2


async def test_a_rotation_inside_the_interval_waits_for_it(
    server: JwksServer, clock: Clock, old_key: SigningKey, new_key: SigningKey
) -> None:
    jwks = make_client(server, clock, min_refresh_interval=5)
    await jwks.get_key(old_key.kid)
    server.set_keys([old_key, new_key])
    with pytest.raises(UnknownKey):
        await jwks.get_key(new_key.kid)  # the JWKS was fetched a moment ago
    clock.now += 5
    assert await jwks.get_key(new_key.kid)


async def test_no_jwks_at_all_is_keys_unavailable() -> None:
    jwks = JwksClient(f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", timeout=1)
    with pytest.raises(KeysUnavailable) as caught:
        await jwks.get_key("any")
    assert caught.value.status == 503


async def test_an_outage_after_the_first_fetch_keeps_the_cached_keys(
    server: JwksServer, clock: Clock, old_key: SigningKey
) -> None:
    jwks = make_client(server, clock, cache_ttl=60)
    await jwks.get_key(old_key.kid)
    server.fail = True
    clock.now += 120  # stale, and auth answers 503
    assert await jwks.get_key(old_key.kid)
    assert server.requests == 2
    server.fail = False
    clock.now += 10
    await jwks.get_key(old_key.kid)
    assert server.requests == 3


async def test_an_injected_transport_is_used() -> None:
    key = SigningKey.generate("mock-key")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"keys": [key.public_jwk()]})

    jwks = JwksClient("http://auth/.well-known/jwks.json", transport=httpx.MockTransport(handler))
    assert await jwks.get_key("mock-key")
    assert seen == ["http://auth/.well-known/jwks.json"]


def test_parse_jwks_keeps_only_public_ed25519_signing_keys() -> None:
    good = SigningKey.generate("good").public_jwk()
    private = SigningKey.generate("private").public_jwk() | {"d": "AAAA"}
    no_kid = {k: v for k, v in SigningKey.generate().public_jwk().items() if k != "kid"}
    x448 = SigningKey.generate("x448").public_jwk() | {"crv": "X448"}
    rsa = {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"}
    encryption = SigningKey.generate("enc").public_jwk() | {"use": "enc"}
    short = SigningKey.generate("short").public_jwk() | {
        "x": base64.urlsafe_b64encode(b"short").decode()
    }
    keys = parse_jwks({"keys": [good, private, no_kid, x448, rsa, encryption, short, "junk"]})
    assert set(keys) == {"good"}
    with pytest.raises(ValueError, match="keys"):
        parse_jwks({"kty": "OKP"})
