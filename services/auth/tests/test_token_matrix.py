"""The token matrix: every bad token is answered 401 by the running service, none crashes.

Each case goes through GET /auth/users/me of the running service (problem details,
``WWW-Authenticate: Bearer``) and through ``hearth.common``'s verifier reading the
service's real JWKS over HTTP. A valid token minted the same way passes both, so the
negatives fail for the reason they are named after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from hearth.common.errors import TokenError
from hearth.common.tokens import JwksClient, TokenVerifier
from hearth.testing.services import AuthStack
from hearth.testing.tokens import SigningKey, TokenMinter

Case = Callable[[TokenMinter, str, str], str]
"""Builds a bad token from the service's minter, the user id and a real refresh token."""

CASES: dict[str, tuple[Case, str]] = {
    "expired": (lambda m, u, r: m(u, iat=time.time() - 2000, ttl=1000), "expired"),
    "not_yet_valid": (lambda m, u, r: m(u, iat=time.time() + 600), "not_yet_valid"),
    "bad_signature": (
        lambda m, u, r: m(u, key=SigningKey.generate(m.key.kid)),
        "invalid",
    ),
    "alg_none": (lambda m, u, r: m(u, alg="none"), "invalid"),
    "hs256_with_public_key": (lambda m, u, r: m(u, alg="HS256"), "invalid"),
    "unknown_kid": (lambda m, u, r: m(u, key=SigningKey.generate("no-such-key")), "unknown_key"),
    "wrong_audience": (lambda m, u, r: m(u, audience="someone-else"), "invalid"),
    "wrong_issuer": (lambda m, u, r: m(u, issuer="evil-auth"), "invalid"),
    "missing_exp": (lambda m, u, r: m(u, omit=("exp",)), "invalid"),
    "refresh_token_as_access": (lambda m, u, r: r, "invalid"),
    "typ_refresh": (lambda m, u, r: m(u, typ="refresh"), "invalid"),
    "garbage": (lambda m, u, r: "not.a.jwt", "invalid"),
}


@pytest.fixture(scope="module")
def subject(auth: AuthStack) -> dict[str, Any]:
    """A real user, logged in once (its refresh token is one of the bad access tokens)."""
    user = auth.create_user()
    user["tokens"] = auth.login(user["username"], user["password"])
    return user


def _verifier(auth: AuthStack) -> TokenVerifier:
    return TokenVerifier(
        JwksClient(f"{auth.url}/.well-known/jwks.json"),
        issuer=auth.settings.token_issuer,
        audience=auth.settings.token_audience,
    )


async def test_a_valid_minted_token_passes(auth: AuthStack, subject: dict[str, Any]) -> None:
    token = auth.minter()(subject["id"], scope="read control")
    assert auth.me(token).status_code == 200
    caller = await _verifier(auth).verify(token)
    assert caller.user_id == subject["id"]


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_token_is_refused(auth: AuthStack, subject: dict[str, Any], case: str) -> None:
    build, reason = CASES[case]
    token = build(auth.minter(), subject["id"], subject["tokens"]["refresh_token"])
    response = auth.me(token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["reason"] == reason
    assert body["status"] == 401
    with pytest.raises(TokenError) as refused:
        await _verifier(auth).verify(token)
    assert refused.value.reason == reason


def test_issued_token_has_the_designed_claims(auth: AuthStack, subject: dict[str, Any]) -> None:
    token = subject["tokens"]["access_token"]
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    jwks = auth.http.get("/.well-known/jwks.json").json()
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert set(claims) == {"iss", "aud", "sub", "iat", "exp", "jti", "typ", "roles", "scope"}
    assert claims["iss"] == "hearth-auth"
    assert claims["aud"] == "hearth"
    assert claims["sub"] == subject["id"]
    assert claims["typ"] == "access"
    assert claims["roles"] == []
    assert claims["scope"] == "read control"
    assert isinstance(claims["iat"], float)
    assert round(claims["iat"] * 1000) == pytest.approx(claims["iat"] * 1000, abs=1e-3)
    assert claims["exp"] - claims["iat"] == pytest.approx(900, abs=0.01)
    assert subject["tokens"]["token_type"] == "bearer"
    assert subject["tokens"]["expires_in"] == 900
    assert subject["tokens"]["refresh_token"].startswith("hrt_")
