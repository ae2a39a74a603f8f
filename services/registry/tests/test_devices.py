"""Devices and their capabilities through the running registry: types, codes, tombstones."""

from __future__ import annotations

from hearth.testing.services import ServiceStack

PROBLEM = "application/problem+json"


def test_the_catalogue_lists_every_type(stack: ServiceStack) -> None:
    user = stack.create_user()
    types = stack.http.get("/registry/device-types", headers=user.headers).json()
    by_type = {t["type"]: t for t in types}
    assert set(by_type) == {
        "temperature-humidity",
        "light",
        "thermostat",
        "plant-waterer",
        "gas-sensor",
        "generic",
    }
    assert [m["name"] for m in by_type["plant-waterer"]["metrics"]] == ["soil-moisture"]
    assert [p["name"] for p in by_type["plant-waterer"]["properties"]] == ["pump"]
    assert by_type["gas-sensor"]["metrics"][0]["unit"] == "ppm"
    assert stack.http.get("/registry/device-types").status_code == 401


def test_a_type_fills_the_capabilities_unless_given(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    response = stack.http.post(
        f"/registry/homes/{home}/devices",
        json={
            "slug": "kitchen-th",
            "name": "Kitchen",
            "type": "temperature-humidity",
            "area": "kitchen",
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/registry/homes/{home}/devices/kitchen-th"
    device = response.json()
    assert device["interval"] == 60
    assert [(m["name"], m["unit"], m["min"], m["max"]) for m in device["metrics"]] == [
        ("temperature", "°C", -40, 85),
        ("humidity", "%", 0, 100),
    ]
    custom = stack.create_device(
        owner,
        home,
        "heater",
        type="thermostat",
        interval=15,
        gateway="kitchen-th",
        properties=[{"name": "power", "kind": "boolean"}],
    )
    assert custom["interval"] == 15
    assert custom["gateway"] == "kitchen-th"
    assert [p["name"] for p in custom["properties"]] == ["power"]
    assert [m["name"] for m in custom["metrics"]] == ["temperature", "heating"]
    read = stack.http.get(f"/registry/homes/{home}/devices/heater", headers=owner.headers).json()
    assert "credentials" not in read  # the password is shown once, in the 201 only
    assert read.pop("state") == {}  # the shadow: nothing reported or asked for yet
    assert read == {key: value for key, value in custom.items() if key != "credentials"}
    listed = stack.http.get(f"/registry/homes/{home}/devices", headers=owner.headers).json()
    assert [d["slug"] for d in listed] == ["heater", "kitchen-th"]


def test_bad_devices_are_refused_with_problem_details(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    stack.create_device(owner, home, "lamp", type="light")
    duplicate = stack.http.post(
        f"/registry/homes/{home}/devices",
        json={"slug": "lamp", "name": "Again"},
        headers=owner.headers,
    )
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "slug_taken")
    assert duplicate.headers["content-type"].startswith(PROBLEM)
    bad_bodies = [
        {"slug": "Lamp", "name": "x"},
        {"slug": "x1", "name": "x", "type": "toaster"},
        {"slug": "x1", "name": "x", "interval": 0},
        {"slug": "x1", "name": "x", "metrics": [{"name": "t", "kind": "boolean", "min": 0}]},
        {"slug": "x1", "name": "x", "metrics": [{"name": "t", "min": 5, "max": 1}]},
        {"slug": "x1", "name": "x", "metrics": [{"name": "t"}, {"name": "t"}]},
        {"slug": "x1", "name": "x", "properties": [{"name": "p", "kind": "number"}]},
        {"slug": "x1", "name": "x", "properties": [{"name": "p", "kind": "enum", "values": []}]},
        {"slug": "x1", "name": "x", "properties": [{"name": "Bad Name", "kind": "boolean"}]},
    ]
    for body in bad_bodies:
        response = stack.http.post(
            f"/registry/homes/{home}/devices", json=body, headers=owner.headers
        )
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith(PROBLEM)
    no_gateway = stack.http.post(
        f"/registry/homes/{home}/devices",
        json={"slug": "x1", "name": "x", "gateway": "ghost"},
        headers=owner.headers,
    )
    assert (no_gateway.status_code, no_gateway.json()["code"]) == (422, "invalid_gateway")
    missing = stack.http.get(f"/registry/homes/{home}/devices/ghost", headers=owner.headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "device_not_found")


def test_a_deleted_device_leaves_a_tombstone(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    stack.create_device(owner, home, "bridge")
    stack.create_device(owner, home, "sensor", gateway="bridge")
    in_use = stack.http.delete(f"/registry/homes/{home}/devices/bridge", headers=owner.headers)
    assert (in_use.status_code, in_use.json()["code"]) == (409, "gateway_in_use")
    cleared = stack.http.patch(
        f"/registry/homes/{home}/devices/sensor", json={"gateway": None}, headers=owner.headers
    )
    assert cleared.json()["gateway"] is None
    deleted = stack.http.delete(f"/registry/homes/{home}/devices/bridge", headers=owner.headers)
    assert deleted.status_code == 204
    assert (
        stack.http.get(f"/registry/homes/{home}/devices/bridge", headers=owner.headers).status_code
        == 404
    )
    assert [
        d["slug"]
        for d in stack.http.get(f"/registry/homes/{home}/devices", headers=owner.headers).json()
    ] == ["sensor"]
    reuse = stack.http.post(
        f"/registry/homes/{home}/devices",
        json={"slug": "bridge", "name": "New"},
        headers=owner.headers,
    )
    assert (reuse.status_code, reuse.json()["code"]) == (409, "slug_taken")
    again = stack.http.delete(f"/registry/homes/{home}/devices/bridge", headers=owner.headers)
    assert again.status_code == 404
    # Another home may use the slug: tombstones are per home.
    other = stack.create_home(owner)["slug"]
    stack.create_device(owner, other, "bridge")


def test_devices_are_updated_but_slug_and_type_stay(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    stack.create_device(owner, home, "a")
    stack.create_device(owner, home, "b", gateway="a")
    loop = stack.http.patch(
        f"/registry/homes/{home}/devices/a", json={"gateway": "b"}, headers=owner.headers
    )
    assert (loop.status_code, loop.json()["code"]) == (422, "invalid_gateway")
    updated = stack.http.patch(
        f"/registry/homes/{home}/devices/a",
        json={
            "name": "Porch",
            "area": "porch",
            "interval": 5,
            "metrics": [{"name": "lux", "unit": "lx", "min": 0, "max": 100000}],
        },
        headers=owner.headers,
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["name"], body["area"], body["interval"], body["metrics"][0]["name"]) == (
        "Porch",
        "porch",
        5,
        "lux",
    )
    for frozen in ({"slug": "z"}, {"type": "light"}):
        response = stack.http.patch(
            f"/registry/homes/{home}/devices/a", json=frozen, headers=owner.headers
        )
        assert response.status_code == 422
