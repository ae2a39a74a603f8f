"""The service starts, migrates, seeds its admin and reports itself ready."""

from __future__ import annotations

import jwt

from hearth.testing.services import ADMIN_USERNAME, AuthStack


def test_admin_is_seeded_and_logs_in(auth: AuthStack) -> None:
    me = auth.me(auth.admin_token)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["username"] == ADMIN_USERNAME
    assert body["roles"] == ["admin"]
    assert set(body) == {
        "id",
        "username",
        "display_name",
        "roles",
        "disabled",
        "created_at",
        "updated_at",
    }
    claims = jwt.decode(auth.admin_token, options={"verify_signature": False})
    assert claims["scope"] == "read control admin"
    assert auth.http.get("/readyz").json()["status"] == "ready"


def test_openapi_offers_the_password_flow(auth: AuthStack) -> None:
    spec = auth.http.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["password"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    form = spec["paths"]["/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
