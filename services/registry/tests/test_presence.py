"""Presence against the real broker: will, disconnect, silent; presence events; list filters.

Auth and the registry on fresh databases and the session's broker (sweeping every 0.2 s);
devices are :class:`hearth.testing.device.TestDevice` with the registry's credentials.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from hearth.common.messages import RegistryEvent
from hearth.common.topics import registry_home_topic, status_topic
from hearth.testing.broker import MqttClientFactory, MqttTestClient, RunningBroker
from hearth.testing.device import TestDevice
from hearth.testing.services import ServiceStack, User
from hearth.testing.waiting import wait_until

WAIT = 10.0


@pytest.fixture
def events(broker: RunningBroker, home: str, mqtt_client: MqttClientFactory) -> MqttTestClient:
    """A realtime login listening to the home's change events."""
    listener = mqtt_client(broker, "realtime")
    listener.subscribe_and_wait(registry_home_topic(home))
    return listener


@pytest.fixture
def make_device(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    devices: list[TestDevice],
) -> Callable[..., TestDevice]:
    def make(**fields: Any) -> TestDevice:
        device = TestDevice.provision(sweeping_stack, broker, owner, home, **fields)
        devices.append(device)
        return device

    return make


def _read(sweeping_stack: ServiceStack, user: User, home: str, device: str) -> dict[str, Any]:
    response = sweeping_stack.http.get(
        f"/registry/homes/{home}/devices/{device}", headers=user.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _presence(sweeping_stack: ServiceStack, user: User, home: str, device: str) -> tuple[bool, str]:
    body = _read(sweeping_stack, user, home, device)
    return body["online"], body["status_reason"]


def _presence_events(listener: MqttTestClient, device: str) -> list[tuple[str, str | None]]:
    found = []
    for payload in listener.payloads():
        event = RegistryEvent.from_bytes(payload)
        if event.device == device and event.presence is not None:
            reason = None if event.presence.reason is None else event.presence.reason.value
            found.append((event.presence.state.value, reason))
    return found


def test_online_then_will_when_killed(
    sweeping_stack: ServiceStack,
    owner: User,
    home: str,
    make_device: Callable[..., TestDevice],
    events: MqttTestClient,
) -> None:
    device = make_device()
    assert _presence(sweeping_stack, owner, home, device.device) == (False, None)  # never seen yet
    device.connect()
    wait_until(lambda: _presence(sweeping_stack, owner, home, device.device) == (True, "connected"))
    assert _read(sweeping_stack, owner, home, device.device)["last_seen"] is not None
    device.kill()
    wait_until(lambda: _presence(sweeping_stack, owner, home, device.device) == (False, "will"))
    wait_until(lambda: len(_presence_events(events, device.device)) >= 2)
    assert _presence_events(events, device.device) == [
        ("online", "connected"),
        ("offline", "will"),
    ]


def test_a_clean_disconnect_is_disconnect(
    sweeping_stack: ServiceStack,
    owner: User,
    home: str,
    make_device: Callable[..., TestDevice],
    events: MqttTestClient,
) -> None:
    device = make_device()
    device.connect()
    wait_until(lambda: _presence(sweeping_stack, owner, home, device.device) == (True, "connected"))
    device.sleep()
    wait_until(
        lambda: _presence(sweeping_stack, owner, home, device.device) == (False, "disconnect")
    )
    wait_until(lambda: ("offline", "disconnect") in _presence_events(events, device.device))


def test_a_silent_device_becomes_silent_and_a_talking_one_does_not(
    sweeping_stack: ServiceStack,
    broker: RunningBroker,
    owner: User,
    home: str,
    make_device: Callable[..., TestDevice],
    mqtt_client: MqttClientFactory,
) -> None:
    quiet = make_device(interval=1)
    talker = make_device(interval=1)  # the positive control: same interval, keeps talking
    quiet.connect()
    talker.connect()
    wait_until(lambda: _presence(sweeping_stack, owner, home, quiet.device) == (True, "connected"))
    started = time.monotonic()
    while _presence(sweeping_stack, owner, home, quiet.device) != (False, "silent"):
        talker.publish_telemetry("temperature", 21.5)
        assert time.monotonic() - started < WAIT, "never became silent"
        time.sleep(0.2)
    assert time.monotonic() - started >= 2.5  # three intervals of 1 s, not sooner
    assert _presence(sweeping_stack, owner, home, talker.device) == (True, "connected")
    # The registry published the retained status on the device's behalf.
    monitor = mqtt_client(broker, "realtime")
    monitor.subscribe_and_wait(status_topic(home, quiet.device))
    retained = monitor.wait_for_messages(1, timeout=WAIT)[0]
    assert retained.retain
    assert json.loads(retained.payload)["reason"] == "silent"
    # Its next birth replaces it.
    quiet.sleep(goodbye=False)
    quiet.connect()
    wait_until(lambda: _presence(sweeping_stack, owner, home, quiet.device) == (True, "connected"))


def test_list_filters_online_area_and_type(
    sweeping_stack: ServiceStack,
    owner: User,
    home: str,
    make_device: Callable[..., TestDevice],
) -> None:
    area = f"area-{uuid.uuid4().hex[:6]}"
    lamp = make_device(area=area, type="light")
    sensor = make_device(area=area)
    lamp.connect()
    wait_until(lambda: _presence(sweeping_stack, owner, home, lamp.device) == (True, "connected"))

    def slugs(**params: Any) -> set[str]:
        response = sweeping_stack.http.get(
            f"/registry/homes/{home}/devices", params=params, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        return {d["slug"] for d in response.json()}

    assert slugs(area=area) == {lamp.device, sensor.device}
    assert slugs(area=area, online="true") == {lamp.device}
    assert slugs(area=area, online="false") == {sensor.device}
    assert slugs(area=area, type="light") == {lamp.device}
    assert slugs(area=area, type="generic") == {sensor.device}
    response = sweeping_stack.http.get(
        f"/registry/homes/{home}/devices", params={"type": "toaster"}, headers=owner.headers
    )
    assert response.status_code == 422
