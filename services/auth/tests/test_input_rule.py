"""The probes of the security issue: bad input answers 422 naming the field, never 500.

Each refusal is followed by a positive control (the same request with clean input works),
and the database still holds what it held.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.testing.services import AuthStack, bearer


def field_error(response: Any) -> list[Any]:
    """The ``loc`` of the one error of a 422 problem."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation"
    (error,) = body["errors"]
    assert "\x00" not in response.text
    assert "\\u0000" not in response.text
    return list(error["loc"])


@pytest.mark.parametrize("bad", ["a\x00b", "bell\x07", "esc\x1b[2J", "\ud800"])
def test_display_name_with_a_control_is_refused(auth: AuthStack, bad: str) -> None:
    user = auth.create_user()
    token = auth.login(user["username"], user["password"])["access_token"]
    response = auth.http.patch(
        "/auth/users/me",
        content=json.dumps({"display_name": bad}),  # ASCII escapes: a lone surrogate too
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert field_error(response)[-1] == "display_name"
    ok = auth.http.patch(
        "/auth/users/me", json={"display_name": " Zoe\u0308 "}, headers=bearer(token)
    )
    assert ok.status_code == 200
    assert ok.json()["display_name"] == "Zoë"  # NFC and trimmed


def test_creating_a_user_with_nul_is_refused(auth: AuthStack) -> None:
    admin = bearer(auth.admin_token)
    for body, field in (
        (
            {"username": "nul-user", "password": "long-enough", "display_name": "a\x00"},
            "display_name",
        ),
        ({"username": "nul-user", "password": "long\x00enough"}, "password"),
        ({"username": "nul\x00user", "password": "long-enough"}, "username"),
    ):
        assert field_error(auth.http.post("/auth/users", json=body, headers=admin))[-1] == field
    created = auth.http.post(
        "/auth/users", json={"username": "nul-user", "password": "long-enough"}, headers=admin
    )
    assert created.status_code == 201, created.text


def test_token_form_with_nul_is_refused_without_logging_in(auth: AuthStack) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    for raw, field in (
        (b"grant_type=password&username=a%00b&password=whatever-pw", "username"),
        (b"grant_type=password&username=ab&password=what%00ever", "password"),
        (b"grant_type=refresh_token&refresh_token=x%00y", "refresh_token"),
    ):
        assert field_error(auth.http.post("/auth/token", content=raw, headers=form))[-1] == field
    wrong = auth.http.post("/auth/token", data={"username": "ab", "password": "whatever-pw"})
    assert wrong.status_code == 400  # positive control: a clean form reaches the grant
    assert wrong.json()["code"] == "invalid_grant"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("offset", "9223372036854775808"),
        ("offset", "2147483648"),
        ("offset", "-1"),
        ("limit", "501"),
        ("limit", "0"),
    ],
)
def test_list_users_bounds_its_integers(auth: AuthStack, name: str, value: str) -> None:
    admin = bearer(auth.admin_token)
    response = auth.http.get("/auth/users", params={name: value}, headers=admin)
    assert field_error(response) == ["query", name]
    page = auth.http.get("/auth/users", params={"offset": 2147483647}, headers=admin)
    assert page.status_code == 200
    assert page.json() == []


def test_lookup_with_nul_is_refused(auth: AuthStack) -> None:
    response = auth.http.get(
        "/auth/users/lookup", params={"username": "a\x00"}, headers=bearer(auth.admin_token)
    )
    assert field_error(response) == ["query", "username"]
