"""Refresh tokens: rotated on every use; a reused one ends its whole family; log out."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg

from hearth.common.db import asyncpg_dsn
from hearth.testing.services import AuthStack


def _refresh(auth: AuthStack, token: str) -> tuple[int, dict[str, object]]:
    response = auth.http.post("/auth/refresh", json={"refresh_token": token})
    return response.status_code, response.json()


def test_rotation_and_reuse_detection(auth: AuthStack) -> None:
    user = auth.create_user()
    first = auth.login(user["username"], user["password"])
    bystander = auth.login(user["username"], user["password"])  # another session (family)

    status, second = _refresh(auth, first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert isinstance(second["access_token"], str)
    assert auth.me(second["access_token"]).status_code == 200

    # The form grant rotates too.
    response = auth.http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    third = response.json()

    # Replaying the used first token: refused, and the family's newest token dies with it.
    status, problem = _refresh(auth, first["refresh_token"])
    assert status == 400
    assert problem["code"] == "invalid_grant"
    status, _ = _refresh(auth, third["refresh_token"])
    assert status == 400

    # The other session is untouched.
    status, _ = _refresh(auth, bystander["refresh_token"])
    assert status == 200


def test_log_out_ends_only_this_session(auth: AuthStack) -> None:
    user = auth.create_user()
    mine = auth.login(user["username"], user["password"])
    other = auth.login(user["username"], user["password"])
    status, rotated = _refresh(auth, mine["refresh_token"])
    assert status == 200

    response = auth.http.post("/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert response.status_code == 204
    assert _refresh(auth, rotated["refresh_token"])[0] == 400
    assert _refresh(auth, other["refresh_token"])[0] == 200
    # Unknown tokens log out quietly (RFC 7009).
    unknown = auth.http.post("/auth/logout", json={"refresh_token": "hrt_nothing"})
    assert unknown.status_code == 204


def test_bad_refresh_requests(auth: AuthStack) -> None:
    status, problem = _refresh(auth, "hrt_" + "x" * 43)
    assert status == 400
    assert problem["code"] == "invalid_grant"
    assert problem["type"] == "about:blank"
    extra = auth.http.post("/auth/refresh", json={"refresh_token": "a", "user": "b"})
    assert extra.status_code == 422
    assert extra.headers["content-type"].startswith("application/problem+json")
    form_extra = auth.http.post(
        "/auth/token", data={"username": "a", "password": "b", "is_admin": "true"}
    )
    assert form_extra.status_code == 422
    missing = auth.http.post("/auth/token", data={"grant_type": "refresh_token"})
    assert missing.status_code == 400


def test_wrong_password_and_unknown_user_look_the_same(auth: AuthStack) -> None:
    user = auth.create_user()
    wrong = auth.http.post("/auth/token", data={"username": user["username"], "password": "nope"})
    unknown = auth.http.post("/auth/token", data={"username": "nobody-here", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_refresh_tokens_are_stored_hashed(auth: AuthStack) -> None:
    user = auth.create_user()
    tokens = auth.login(user["username"], user["password"])
    url = auth.settings.database_url
    assert url is not None

    async def stored() -> list[str]:
        conn = await asyncpg.connect(asyncpg_dsn(url.get_secret_value()))
        try:
            rows = await conn.fetch(
                "SELECT token_hash FROM auth.refresh_tokens WHERE user_id = $1::uuid", user["id"]
            )
        finally:
            await conn.close()
        return [row["token_hash"] for row in rows]

    hashes = asyncio.run(stored())
    assert hashes == [hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()]
    assert tokens["refresh_token"] not in hashes
