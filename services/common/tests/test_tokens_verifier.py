"""TokenVerifier: every way an access token must be refused, and the Caller it yields.

The JWKS comes from the harness's server over real HTTP (``jwks_server``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from hearth.common.errors import (
    HearthError,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenNotYetValid,
    TokenRevoked,
    UnknownKey,
    UserDisabled,
)
from hearth.common.messages import UserMark
from hearth.common.tokens import REQUIRED_CLAIMS, Caller, TokenVerifier
from hearth.testing.tokens import JwksServer, SigningKey, TokenMinter, new_user_id

USER = "4f1c6a1e-2b7d-4c35-9d8e-0a1b2c3d4e5f"


async def test_a_valid_token_gives_its_caller(
    mint_token: TokenMinter, token_verifier: TokenVerifier, jwks_server: JwksServer
) -> None:
    before = jwks_server.requests
    token = mint_token(USER, roles=["admin"], scope="read control admin", jti="t-1")
    caller = await token_verifier.verify(token)
    assert jwks_server.requests == before + 1  # fetched over HTTP
    assert caller.user_id == USER
    assert caller.roles == frozenset({"admin"})
    assert caller.scopes == frozenset({"read", "control", "admin"})
    assert caller.homes is None
    assert caller.token_id == "t-1"
    assert caller.is_admin
    assert not caller.is_api_key
    assert caller.expires_at == pytest.approx(caller.issued_at + 900)
    assert caller.token == token
    assert caller.authorization == f"Bearer {token}"
    assert token not in repr(caller)
    assert token not in str(caller)
    # The key is cached: a second token costs no request.
    await token_verifier.verify(mint_token(USER))
    assert jwks_server.requests == before + 1


async def test_an_api_key_token_is_limited_to_its_homes(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    caller = await token_verifier.verify(mint_token(USER, scope="read", homes=["flat", "lab-2"]))
    assert caller.homes == frozenset({"flat", "lab-2"})
    assert caller.is_api_key
    assert not caller.is_admin
    assert caller.may_use_home("flat")
    assert not caller.may_use_home("garage")
    assert caller.has_scope("read")
    assert not caller.has_scope("control")


async def assert_refused(
    verifier: TokenVerifier, token: str, error: type[TokenError], reason: str
) -> None:
    with pytest.raises(error) as caught:
        await verifier.verify(token)
    assert caught.value.reason == reason
    assert caught.value.status == 401
    assert isinstance(caught.value, HearthError)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_each_required_claim_is_required(
    mint_token: TokenMinter, token_verifier: TokenVerifier, claim: str
) -> None:
    token = mint_token(USER, omit=[claim])
    await assert_refused(token_verifier, token, TokenInvalid, "invalid")
    with pytest.raises(TokenInvalid, match=f"lacks the '{claim}' claim"):  # for that reason
        await token_verifier.verify(token)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"audience": "another-app"}, id="wrong-aud"),
        pytest.param({"issuer": "https://evil.example"}, id="wrong-iss"),
        pytest.param({"typ": "refresh"}, id="typ-refresh"),
        pytest.param({"typ": "api_key"}, id="typ-api-key"),
        pytest.param({"extra": {"roles": "admin"}}, id="roles-not-a-list"),
        pytest.param({"extra": {"roles": ["admin", 1]}}, id="roles-not-strings"),
        pytest.param({"extra": {"scope": ["read"]}}, id="scope-not-a-string"),
        pytest.param({"homes": ["Flat!"]}, id="homes-not-slugs"),
        pytest.param({"extra": {"homes": "flat"}}, id="homes-not-a-list"),
        pytest.param({"extra": {"sub": "alice"}}, id="sub-not-a-user-id"),
        pytest.param({"extra": {"sub": USER.upper()}}, id="sub-not-canonical"),
        pytest.param({"extra": {"iat": str(time.time())}}, id="iat-a-string"),
        pytest.param({"extra": {"jti": 17}}, id="jti-not-a-string"),
    ],
)
async def test_wrong_claims_are_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier, overrides: dict[str, Any]
) -> None:
    await assert_refused(token_verifier, mint_token(USER, **overrides), TokenInvalid, "invalid")


async def test_a_token_from_an_unknown_key_is_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    stranger = SigningKey.generate("stranger-key")
    await assert_refused(token_verifier, mint_token(USER, key=stranger), UnknownKey, "unknown_key")


async def test_a_forged_signature_under_a_known_kid_is_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier, token_signing_key: SigningKey
) -> None:
    forger = SigningKey.generate()
    forged = mint_token(USER, key=forger, kid=token_signing_key.kid)
    await assert_refused(token_verifier, forged, TokenInvalid, "invalid")
    # Tampering with a genuine token's payload breaks its signature too.
    header, payload, signature = mint_token(USER).split(".")
    other_payload = mint_token(USER, roles=["admin"]).split(".")[1]
    tampered = f"{header}.{other_payload}.{signature}"
    assert payload != other_payload
    await assert_refused(token_verifier, tampered, TokenInvalid, "invalid")


async def test_alg_none_is_refused(mint_token: TokenMinter, token_verifier: TokenVerifier) -> None:
    token = mint_token(USER, alg="none")
    assert token.endswith(".")
    await assert_refused(token_verifier, token, TokenInvalid, "invalid")


async def test_hs256_signed_with_the_public_key_is_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    """The key-confusion attack: HMAC with the published public key as the secret."""
    await assert_refused(token_verifier, mint_token(USER, alg="HS256"), TokenInvalid, "invalid")
    # Also when the header claims EdDSA is not what was used: the signature must not verify.
    token = mint_token(USER, alg="HS256", headers={"alg": "EdDSA"})
    await assert_refused(token_verifier, token, TokenInvalid, "invalid")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "eyJ.eyJ.x", "x" * 10000])
async def test_garbage_is_refused(token_verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenMissing if token == "" else TokenInvalid):
        await token_verifier.verify(token)


async def test_an_expired_token_is_refused_beyond_the_leeway(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    now = time.time()
    expired = mint_token(USER, iat=now - 1000, exp=now - 60)
    await assert_refused(token_verifier, expired, TokenExpired, "expired")
    within_leeway = mint_token(USER, iat=now - 1000, exp=now - 1)
    assert (await token_verifier.verify(within_leeway)).user_id == USER


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_a_token_from_the_future_is_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier, claim: str
) -> None:
    future = time.time() + 120
    times: dict[str, Any] = {claim: future, "exp": future + 900}
    token = mint_token(USER, **times)
    await assert_refused(token_verifier, token, TokenNotYetValid, "not_yet_valid")


async def test_a_slightly_early_clock_is_tolerated(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    assert await token_verifier.verify(mint_token(USER, iat=time.time() + 2))


async def test_a_token_issued_before_its_users_not_before_is_revoked(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    not_before = int(time.time() * 1000) - 10_000  # ten seconds ago, in ms
    token_verifier.marks.apply(USER, UserMark(not_before=not_before))
    one_ms_early = mint_token(USER, iat=(not_before - 1) / 1000)
    await assert_refused(token_verifier, one_ms_early, TokenRevoked, "revoked")
    # A token issued at or after the mark passes (millisecond precision).
    at_the_mark = mint_token(USER, iat=not_before / 1000)
    assert (await token_verifier.verify(at_the_mark)).user_id == USER
    assert await token_verifier.verify(mint_token(USER))
    # Another user is unaffected.
    other = new_user_id()
    assert (await token_verifier.verify(mint_token(other, iat=(not_before - 1) / 1000))).user_id


async def test_a_disabled_users_tokens_are_all_refused(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    token = mint_token(USER)
    assert await token_verifier.verify(token)
    token_verifier.marks.apply(USER, UserMark(not_before=0, disabled=True))
    await assert_refused(token_verifier, token, UserDisabled, "disabled")
    await assert_refused(token_verifier, mint_token(USER), UserDisabled, "disabled")
    token_verifier.marks.apply(USER, None)  # the mark cleared: the user is back
    caller = await token_verifier.verify(token)
    assert isinstance(caller, Caller)
