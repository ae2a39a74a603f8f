"""Your app's tests against a real Hearth platform (started once per session, removed after)."""

from __future__ import annotations

import httpx
import pytest

from hearth.testing.containers import HearthPlatform


def device_names(registry_url: str, token: str, home: str) -> list[str]:
    """The code under test: your app lists the devices of a home through Hearth's REST API."""
    response = httpx.get(
        f"{registry_url}/registry/homes/{home}/devices",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    response.raise_for_status()
    return sorted(device["name"] for device in response.json())


def test_my_app_lists_the_devices_of_a_home(hearth_platform: HearthPlatform) -> None:
    home = hearth_platform.create_home(name="Test flat")["slug"]
    hearth_platform.create_device(home, "kitchen", name="Kitchen", type="temperature-humidity")
    hearth_platform.create_device(home, "hall-light", name="Hall light", type="light")

    token = hearth_platform.token()  # the admin's; hearth_platform.admin has the login
    assert device_names(hearth_platform.urls.registry, token, home) == ["Hall light", "Kitchen"]


def test_my_app_reports_a_refused_token(hearth_platform: HearthPlatform) -> None:
    home = hearth_platform.create_home()["slug"]
    url = hearth_platform.urls.registry

    with pytest.raises(httpx.HTTPStatusError) as refused:
        device_names(url, "not-a-token", home)
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["content-type"] == "application/problem+json"
    assert device_names(url, hearth_platform.token(), home) == []  # a valid one is not
