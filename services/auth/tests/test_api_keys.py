"""API keys: created by a logged-in user, shown once, stored hashed, exchanged, revoked."""

from __future__ import annotations

import hashlib
from typing import Any

import jwt
import pytest

from hearth.testing.database import run_async
from hearth.testing.services import AuthStack, bearer


def _create(auth: AuthStack, token: str, **body: Any) -> dict[str, Any]:
    response = auth.http.post("/auth/api-keys", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _exchange(auth: AuthStack, key: str) -> Any:
    return auth.http.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_secret": key}
    )


@pytest.fixture(scope="module")
def owner(auth: AuthStack) -> dict[str, Any]:
    user = auth.create_user()
    user["token"] = auth.login(user["username"], user["password"])["access_token"]
    return user


def test_a_key_is_shown_once_and_exchanged_for_a_limited_token(
    auth: AuthStack, owner: dict[str, Any]
) -> None:
    created = _create(auth, owner["token"], name="My app", scopes=["read"], homes=["flat", "lab"])
    key = created["key"]
    assert key.startswith("hak_")
    assert created["scopes"] == ["read"]
    assert created["homes"] == ["flat", "lab"]
    assert created["last_used_at"] is None

    listed = auth.http.get("/auth/api-keys", headers=bearer(owner["token"])).json()
    (mine,) = [item for item in listed if item["id"] == created["id"]]
    assert "key" not in mine
    assert key not in str(listed)
    assert mine["last_used_at"] is None

    answer = _exchange(auth, key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body
    assert body["scope"] == "read"
    assert body["expires_in"] == int(auth.settings.access_token_ttl)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == owner["id"]
    assert claims["homes"] == ["flat", "lab"]
    assert claims["key"] == created["id"]
    assert claims["roles"] == []

    listed = auth.http.get("/auth/api-keys", headers=bearer(owner["token"])).json()
    (mine,) = [item for item in listed if item["id"] == created["id"]]
    assert mine["last_used_at"] is not None

    # the token reads (who am I) but manages nothing at auth: that needs a login's token
    token = body["access_token"]
    assert auth.me(token).status_code == 200
    refused = auth.http.post(
        "/auth/api-keys", json={"name": "more", "scopes": ["read"]}, headers=bearer(token)
    )
    assert refused.status_code == 403
    assert (
        auth.http.patch(
            "/auth/users/me", json={"display_name": "x"}, headers=bearer(token)
        ).status_code
        == 403
    )
    assert (
        auth.http.patch(
            "/auth/users/me", json={"display_name": "x"}, headers=bearer(owner["token"])
        ).status_code
        == 200
    )


def test_the_key_is_stored_hashed(auth: AuthStack, owner: dict[str, Any]) -> None:
    created = _create(auth, owner["token"], name="hashed", scopes=["read", "control"])
    secret = created["key"][len("hak_") + 32 + 1 :]

    async def stored() -> list[Any]:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(auth.settings.require_database_url())
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT secret_hash FROM auth.api_keys WHERE id = :id"),
                    {"id": created["id"]},
                )
                return list(rows.scalars())
        finally:
            await engine.dispose()

    assert run_async(stored()) == [hashlib.sha256(secret.encode()).hexdigest()]


def test_a_revoked_key_mints_nothing(auth: AuthStack, owner: dict[str, Any]) -> None:
    created = _create(auth, owner["token"], name="to revoke", scopes=["control"])
    assert _exchange(auth, created["key"]).status_code == 200  # positive control
    other = auth.create_user()
    other_token = auth.login(other["username"], other["password"])["access_token"]
    stranger = auth.http.delete(f"/auth/api-keys/{created['id']}", headers=bearer(other_token))
    assert stranger.status_code == 404  # only its owner revokes it
    assert _exchange(auth, created["key"]).status_code == 200

    revoked = auth.http.delete(f"/auth/api-keys/{created['id']}", headers=bearer(owner["token"]))
    assert revoked.status_code == 204
    refused = _exchange(auth, created["key"])
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_client"
    listed = auth.http.get("/auth/api-keys", headers=bearer(owner["token"])).json()
    assert [item["revoked"] for item in listed if item["id"] == created["id"]] == [True]


def test_a_wrong_or_made_up_key_is_refused(auth: AuthStack, owner: dict[str, Any]) -> None:
    created = _create(auth, owner["token"], name="real", scopes=["read"])
    tampered = created["key"][:-1] + ("A" if created["key"][-1] != "A" else "B")
    for key in (tampered, "hak_" + "0" * 32 + "_" + "x" * 43, "hak_nonsense"):
        answer = _exchange(auth, key)
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_client"
    assert _exchange(auth, created["key"]).status_code == 200


def test_admin_scope_keeps_the_admin_role_only_for_admins(auth: AuthStack) -> None:
    admin_key = _create(auth, auth.admin_token, name="ops", scopes=["read", "admin"])
    claims = jwt.decode(
        _exchange(auth, admin_key["key"]).json()["access_token"],
        options={"verify_signature": False},
    )
    assert claims["roles"] == ["admin"]
    assert claims["scope"] == "admin read"
    assert "homes" not in claims
    plain_key = _create(auth, auth.admin_token, name="plain", scopes=["read"])
    token = _exchange(auth, plain_key["key"]).json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == []
    # an API-key token never administers auth, whatever its scope
    admin_token = _exchange(auth, admin_key["key"]).json()["access_token"]
    assert auth.http.get("/auth/users", headers=bearer(admin_token)).status_code == 403
    assert auth.http.get("/auth/users", headers=bearer(auth.admin_token)).status_code == 200


def test_key_requests_are_checked(auth: AuthStack, owner: dict[str, Any]) -> None:
    for body in (
        {"name": "x", "scopes": ["write"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "homes": ["Not A Slug"]},
        {"name": "x", "scopes": ["read"], "homes": []},
    ):
        answer = auth.http.post("/auth/api-keys", json=body, headers=bearer(owner["token"]))
        assert answer.status_code == 422, body
    assert (
        auth.http.post("/auth/api-keys", json={"name": "x", "scopes": ["read"]}).status_code == 401
    )
