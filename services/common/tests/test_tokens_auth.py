"""The FastAPI dependencies of hearth.common.auth: 401/403 problem details, the Caller."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI

from hearth.common.auth import AdminCaller, CurrentCaller, require_scope
from hearth.common.messages import UserMark
from hearth.common.problems import PROBLEM_CONTENT_TYPE
from hearth.common.settings import HearthSettings
from hearth.common.tokens import Caller, JwksClient, TokenVerifier
from hearth.common.web import create_service_app
from hearth.testing.ports import free_port
from hearth.testing.tokens import TEST_ISSUER, SigningKey, TokenMinter

USER = "4f1c6a1e-2b7d-4c35-9d8e-0a1b2c3d4e5f"


def make_app(verifier: TokenVerifier) -> FastAPI:
    settings = HearthSettings(env="test", service="sample", replica="0")
    app = create_service_app(settings, title="sample", token_verifier=verifier)

    @app.get("/me")
    async def me(caller: CurrentCaller) -> dict[str, object]:
        return {"user_id": caller.user_id, "scopes": sorted(caller.scopes)}

    @app.post("/switch", dependencies=[require_scope("control")])
    async def switch(caller: CurrentCaller) -> dict[str, str]:
        return {"by": caller.user_id}

    @app.get("/manage")
    async def manage(caller: Annotated[Caller, require_scope("read", "admin")]) -> dict[str, str]:
        return {"by": caller.user_id}

    @app.get("/admin")
    async def admin(caller: AdminCaller) -> dict[str, bool]:
        return {"admin": caller.is_admin}

    return app


@pytest.fixture
async def client(token_verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(token_verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://sample") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "unauthorized"
    assert body["reason"] == reason


async def test_a_valid_token_reaches_the_route(
    client: httpx.AsyncClient, mint_token: TokenMinter
) -> None:
    response = await client.get("/me", headers=bearer(mint_token(USER, scope="read control")))
    assert response.status_code == 200
    assert response.json() == {"user_id": USER, "scopes": ["control", "read"]}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}, {"X-Token": "t"}],
)
async def test_no_bearer_token_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/me", headers=headers)
    assert_401(response, "missing")
    assert response.headers["www-authenticate"] == 'Bearer realm="hearth"'


async def test_a_bad_token_is_401_invalid_token(
    client: httpx.AsyncClient, mint_token: TokenMinter
) -> None:
    response = await client.get("/me", headers=bearer(mint_token(USER, alg="none")))
    assert_401(response, "invalid")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    response = await client.get("/me", headers=bearer("garbage"))
    assert_401(response, "invalid")


async def test_an_expired_token_says_so(client: httpx.AsyncClient, mint_token: TokenMinter) -> None:
    token = mint_token(USER, iat=time.time() - 1000, exp=time.time() - 100)
    response = await client.get("/me", headers=bearer(token))
    assert_401(response, "expired")
    assert 'error_description="expired"' in response.headers["www-authenticate"]


async def test_a_revoked_token_is_401(
    client: httpx.AsyncClient, mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    token = mint_token(USER, iat=time.time() - 10)
    token_verifier.marks.apply(USER, UserMark(not_before=int(time.time() * 1000)))
    assert_401(await client.get("/me", headers=bearer(token)), "revoked")


async def test_a_missing_scope_is_403_insufficient_scope(
    client: httpx.AsyncClient, mint_token: TokenMinter
) -> None:
    read_only = mint_token(USER, scope="read")
    response = await client.post("/switch", headers=bearer(read_only))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope", scope="control"' in response.headers["www-authenticate"]
    allowed = await client.post("/switch", headers=bearer(mint_token(USER, scope="read control")))
    assert allowed.json() == {"by": USER}
    # Every listed scope is needed.
    assert (await client.get("/manage", headers=bearer(read_only))).status_code == 403
    both = mint_token(USER, scope="read admin")
    assert (await client.get("/manage", headers=bearer(both))).status_code == 200
    # Without a token at all it is 401, not 403.
    assert_401(await client.post("/switch"), "missing")


async def test_admin_routes_need_the_admin_role(
    client: httpx.AsyncClient, mint_token: TokenMinter
) -> None:
    user = await client.get("/admin", headers=bearer(mint_token(USER, scope="read admin")))
    assert user.status_code == 403
    assert user.json()["code"] == "forbidden"
    admin = await client.get("/admin", headers=bearer(mint_token(USER, roles=["admin"])))
    assert admin.json() == {"admin": True}


async def test_unreachable_keys_are_503_not_401() -> None:
    dead = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    verifier = TokenVerifier(JwksClient(dead, timeout=1), issuer=TEST_ISSUER)
    token = TokenMinter(SigningKey.generate())(USER)
    transport = httpx.ASGITransport(app=make_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://sample") as http:
        response = await http.get("/me", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["code"] == "keys_unavailable"
    assert token not in response.text
