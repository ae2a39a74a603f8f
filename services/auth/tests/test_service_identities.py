"""Service identities: the client-credentials grant gives a platform service its own token."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import jwt
import pytest

from hearth.common.errors import TokenInvalid
from hearth.common.service_identities import SERVICE_SCOPES, client_secret_key
from hearth.common.tokens import JwksClient, TokenVerifier
from hearth.testing.services import AuthStack


def _verifier(auth: AuthStack, *, accept_services: bool) -> TokenVerifier:
    return TokenVerifier(
        JwksClient(f"{auth.url}/.well-known/jwks.json"),
        issuer=auth.settings.token_issuer,
        audience=auth.settings.token_audience,
        accept_services=accept_services,
    )


async def test_client_credentials_mint_a_service_token(
    make_auth: Callable[..., AuthStack],
) -> None:
    secret = secrets.token_urlsafe(32)
    auth = make_auth(**{client_secret_key("automation"): secret})
    answer = auth.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "automation",
            "client_secret": secret,
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body
    token = body["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "automation"
    assert claims["roles"] == []
    assert set(claims["scope"].split()) == SERVICE_SCOPES["automation"] == {"read", "control"}
    assert "homes" not in claims

    caller = await _verifier(auth, accept_services=True).verify(token)
    assert caller.is_service
    assert caller.service == "automation"
    assert not caller.is_session
    assert not caller.is_admin
    # services that have no rules for service callers refuse such tokens (401, not a 500)
    with pytest.raises(TokenInvalid, match="service tokens"):
        await _verifier(auth, accept_services=False).verify(token)
    assert auth.me(token).status_code == 401


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [("automation", "wrong-secret"), ("registry", "anything"), ("automation", "")],
)
def test_wrong_client_credentials_are_refused(
    make_auth: Callable[..., AuthStack], client_id: str, client_secret: str
) -> None:
    secret = secrets.token_urlsafe(32)
    auth = make_auth(**{client_secret_key("automation"): secret})
    form = {"grant_type": "client_credentials", "client_id": client_id}
    answer = auth.http.post("/auth/token", data={**form, "client_secret": client_secret})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_client"
    assert secret not in answer.text
    right = auth.http.post(
        "/auth/token", data={**form, "client_id": "automation", "client_secret": secret}
    )
    assert right.status_code == 200  # positive control


def test_an_unconfigured_identity_gets_no_tokens(make_auth: Callable[..., AuthStack]) -> None:
    auth = make_auth()  # no HEARTH_AUTOMATION_CLIENT_SECRET
    answer = auth.http.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "automation", "client_secret": ""},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_client"


async def test_a_forged_service_token_with_more_rights_is_refused(auth: AuthStack) -> None:
    minter = auth.minter()
    verifier = _verifier(auth, accept_services=True)
    fine = minter("automation", scope="read control")
    assert (await verifier.verify(fine)).service == "automation"  # positive control
    for token in (
        minter("automation", scope="read control admin"),
        minter("automation", roles=["admin"]),
        minter("automation", homes=["flat"]),
    ):
        with pytest.raises(TokenInvalid, match="more than its service"):
            await verifier.verify(token)
