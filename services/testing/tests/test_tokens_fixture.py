"""The token harness (hearth.testing.tokens): JWKS over real HTTP, the minter, the verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest

from hearth.common.tokens import RevocationMarks, TokenVerifier
from hearth.testing.tokens import (
    TEST_AUDIENCE,
    TEST_ISSUER,
    JwksServer,
    SigningKey,
    TokenMinter,
    new_user_id,
)


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_jwks_is_served_over_http(
    jwks_server: JwksServer, token_signing_key: SigningKey
) -> None:
    response = httpx.get(jwks_server.url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    (jwk,) = response.json()["keys"]
    assert jwk == token_signing_key.public_jwk()
    assert jwk["kid"] == "test-key-1"
    assert "d" not in jwk  # never the private half
    assert httpx.get(f"{jwks_server.base_url}/other").status_code == 404


def test_a_jwks_server_swaps_keys_and_stops() -> None:
    first, second = SigningKey.generate("one"), SigningKey.generate("two")
    with JwksServer([first]) as server:
        assert [k["kid"] for k in httpx.get(server.url).json()["keys"]] == ["one"]
        server.set_keys([first, second])
        assert [k["kid"] for k in httpx.get(server.url).json()["keys"]] == ["one", "two"]
        server.fail = True
        assert httpx.get(server.url).status_code == 503
        assert server.requests == 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)


def test_minted_tokens_carry_the_access_claims(
    mint_token: TokenMinter, token_signing_key: SigningKey
) -> None:
    user = new_user_id()
    token = mint_token(user, roles=["admin"], scope="read", homes=["flat"], ttl=60)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": "test-key-1"}
    claims = jwt.decode(
        token,
        token_signing_key.private_key.public_key(),
        algorithms=["EdDSA"],
        audience=TEST_AUDIENCE,
        issuer=TEST_ISSUER,
    )
    assert claims["sub"] == user
    assert claims["typ"] == "access"
    assert claims["roles"] == ["admin"]
    assert claims["scope"] == "read"
    assert claims["homes"] == ["flat"]
    assert claims["exp"] - claims["iat"] == pytest.approx(60)
    assert abs(claims["iat"] - time.time()) < 5
    assert round(claims["iat"], 3) == claims["iat"]  # millisecond precision
    assert "homes" not in jwt.decode(mint_token(user), options={"verify_signature": False})


def test_omit_and_extra_shape_negative_tokens(mint_token: TokenMinter) -> None:
    claims = jwt.decode(
        mint_token(omit=["scope", "jti"], extra={"typ": "refresh"}),
        options={"verify_signature": False},
    )
    assert "scope" not in claims
    assert "jti" not in claims
    assert claims["typ"] == "refresh"


def test_alg_none_and_hs256_are_crafted_by_hand(
    mint_token: TokenMinter, token_signing_key: SigningKey
) -> None:
    header, payload, signature = mint_token(alg="none").split(".")
    assert json.loads(b64decode(header))["alg"] == "none"
    assert signature == ""
    header, payload, signature = mint_token(alg="HS256").split(".")
    assert json.loads(b64decode(header))["alg"] == "HS256"
    expected = hmac.new(
        token_signing_key.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    assert b64decode(signature) == expected
    with pytest.raises(ValueError, match="RS256"):
        mint_token(alg="RS256")


async def test_the_token_verifier_fixture_accepts_minted_tokens(
    mint_token: TokenMinter,
    token_verifier: TokenVerifier,
    revocation_marks: RevocationMarks,
    jwks_server: JwksServer,
) -> None:
    assert token_verifier.marks is revocation_marks
    assert token_verifier.jwks.url == jwks_server.url
    user = new_user_id()
    caller = await token_verifier.verify(mint_token(user, roles=["admin"]))
    assert caller.user_id == user
    assert caller.is_admin
