"""The probes of the security issue on the registry: NUL in names, areas, units, values,
time zones and paths answers 422 naming the field, never 500; clean input still works."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.testing.services import ServiceStack, User

NUL = "a\x00b"


def loc_of(response: Any) -> list[Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation"
    (error,) = body["errors"]
    return list(error["loc"])


def send(stack: ServiceStack, user: User, method: str, path: str, body: dict[str, Any]) -> Any:
    """``body`` as ASCII-escaped JSON (a lone surrogate survives the trip)."""
    return stack.http.request(
        method,
        path,
        content=json.dumps(body),
        headers={**user.headers, "content-type": "application/json"},
    )


@pytest.mark.parametrize("bad", [NUL, "tab\there", "\ud800"])
def test_home_fields_refuse_controls(stack: ServiceStack, bad: str) -> None:
    owner = stack.create_user("owner")
    response = send(stack, owner, "POST", "/registry/homes", {"slug": "h-nul", "name": bad})
    assert loc_of(response)[-1] == "name"
    home = stack.create_home(owner)["slug"]
    for body, field in (({"name": bad}, "name"), ({"timezone": bad}, "timezone")):
        response = send(stack, owner, "PATCH", f"/registry/homes/{home}", body)
        assert loc_of(response)[-1] == field
    renamed = send(stack, owner, "PATCH", f"/registry/homes/{home}", {"name": " Cafe\u0301 "})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Café"


@pytest.mark.parametrize(
    ("body", "loc_end"),
    [
        ({"slug": "d1", "name": NUL}, ["name"]),
        ({"slug": "d1", "name": "Lamp", "area": NUL}, ["area"]),
        (
            {"slug": "d1", "name": "Lamp", "metrics": [{"name": "t", "unit": NUL}]},
            ["metrics", 0, "unit"],
        ),
        (
            {
                "slug": "d1",
                "name": "Lamp",
                "properties": [{"name": "mode", "kind": "enum", "values": ["on", NUL]}],
            },
            ["properties", 0, "values", 1],
        ),
    ],
)
def test_device_fields_refuse_nul(
    stack: ServiceStack, body: dict[str, Any], loc_end: list[Any]
) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    response = send(stack, owner, "POST", f"/registry/homes/{home}/devices", body)
    loc = loc_of(response)
    assert loc[-len(loc_end) :] == loc_end
    created = stack.create_device(owner, home, "d1", metrics=[{"name": "t", "unit": "°C"}])
    assert created["metrics"][0]["unit"] == "°C"
    patched = send(stack, owner, "PATCH", f"/registry/homes/{home}/devices/d1", {"area": NUL})
    assert loc_of(patched)[-1] == "area"


def test_paths_and_authorize_refuse_nul(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    assert loc_of(stack.http.get(f"/registry/homes/{home}%00", headers=owner.headers)) == ["path"]
    response = send(stack, owner, "POST", "/registry/authorize", {"action": "read", "home": NUL})
    assert loc_of(response)[-1] == "home"
    allowed = send(stack, owner, "POST", "/registry/authorize", {"action": "read", "home": home})
    assert allowed.status_code == 200
    assert allowed.json()["allowed"] is True
