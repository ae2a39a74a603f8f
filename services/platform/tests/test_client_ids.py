"""Client-id takeover, on the real broker: every login is bound to one client id.

MQTT lets a new connection with a client id in use take that session over (the old one is
disconnected). Each service replica's login is bound to ``<service>-<replica>``, each
device's to ``dev.<home>.<device>``, so a service login is refused under a device's id and
under another service's (or a sibling replica's) id. Every refusal has its positive
control: the original client is still connected (it never saw a disconnect), a message it
sends after the attempt reaches a watcher, and (devices) a command sent to it after the
attempt arrives; the attacker's login works under its own id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from hearth.common.topics import command_topic, service_status_topic, telemetry_topic
from hearth.platform.logins import PLATFORM_SERVICES
from hearth.testing.broker import (
    ConnectRefused,
    Login,
    MqttTestClient,
    RunningBroker,
    connect_client,
)

NOT_AUTHORIZED = 0x87


def _name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def watcher(broker: RunningBroker, mqtt_client: Callable[..., MqttTestClient]) -> MqttTestClient:
    """The dynsec admin, reading every device topic and the system bus."""
    client = mqtt_client(broker, broker.admin)
    for topic_filter in ("hearth/#", "hearth-sys/#"):
        assert client.subscribe_and_wait(topic_filter)[0].value == 1
    return client


def assert_refused(broker: RunningBroker, login: Login, client_id: str, protocol: int) -> None:
    with pytest.raises(ConnectRefused) as refused:
        connect_client(broker.host, broker.port, login, client_id=client_id, protocol=protocol)
    assert refused.value.reason.value == NOT_AUTHORIZED


def assert_still_delivering(original: MqttTestClient, watcher: MqttTestClient, topic: str) -> None:
    """The original client sends after the attempt and the watcher gets it."""
    marker = uuid.uuid4().hex
    reason = original.publish_and_wait(topic, marker, qos=1)
    assert reason is not None
    assert not reason.is_failure
    watcher.wait_for(lambda: marker.encode() in watcher.payloads(topic))
    assert original.is_connected()
    assert original.disconnects == 0


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("attacker", PLATFORM_SERVICES)
def test_no_service_login_takes_a_device_s_client_id(
    broker: RunningBroker,
    mqtt_client: Callable[..., MqttTestClient],
    device_login: Callable[..., Login],
    watcher: MqttTestClient,
    attacker: str,
    protocol: int,
) -> None:
    home = _name()
    login = device_login(home, "lamp")
    assert login.client_id == f"dev.{home}.lamp"
    device = mqtt_client(broker, login, protocol=protocol)
    commands = command_topic(home, "lamp", "power")
    assert device.subscribe_and_wait(commands)[0].value == 1
    thief = broker.service_login(attacker, _name())

    assert_refused(broker, thief, login.client_id, protocol)

    # Positive controls: the thief's login is good under its own id; the device never
    # left, sends, and receives a command sent after the attempt.
    connect_client(broker.host, broker.port, thief, protocol=protocol).close()
    assert_still_delivering(device, watcher, telemetry_topic(home, "lamp", "power"))
    registry = mqtt_client(broker, "registry")
    marker = uuid.uuid4().hex
    registry.publish_and_wait(commands, marker)
    device.wait_for(lambda: marker.encode() in device.payloads(commands))
    assert device.disconnects == 0


PAIRS = [(attacker, victim) for attacker in PLATFORM_SERVICES for victim in PLATFORM_SERVICES]


@pytest.mark.parametrize(("attacker", "victim"), PAIRS)
def test_no_service_login_takes_another_service_s_or_replica_s_client_id(
    broker: RunningBroker,
    mqtt_client: Callable[..., MqttTestClient],
    watcher: MqttTestClient,
    attacker: str,
    victim: str,
) -> None:
    replica = _name()
    original = mqtt_client(broker, broker.service_login(victim, replica))
    assert original._client_id.decode() == f"{victim}-{replica}"
    thief = broker.service_login(attacker, _name())  # a sibling replica when the same service

    for protocol in (5, 4):
        assert_refused(broker, thief, f"{victim}-{replica}", protocol)

    connect_client(broker.host, broker.port, thief).close()  # its own id: fine
    assert_still_delivering(original, watcher, service_status_topic(victim, replica))


def test_a_device_login_takes_no_service_s_client_id(
    broker: RunningBroker,
    mqtt_client: Callable[..., MqttTestClient],
    device_login: Callable[..., Login],
    watcher: MqttTestClient,
) -> None:
    replica = _name()
    original = mqtt_client(broker, broker.service_login("ingest", replica))
    device = device_login(_name(), "d1")
    assert_refused(broker, device, f"ingest-{replica}", 5)
    assert_still_delivering(original, watcher, service_status_topic("ingest", replica))


def test_the_reconnect_war_of_the_issue_cannot_start(
    broker: RunningBroker,
    mqtt_client: Callable[..., MqttTestClient],
    device_login: Callable[..., Login],
    watcher: MqttTestClient,
) -> None:
    """Two auto-reconnecting clients with one id knocked each other off every second: the
    second one is now refused for good, and the first keeps its session."""
    home = _name()
    login = device_login(home, "d1")
    device = mqtt_client(broker, login)
    thief: Any = broker.service_login("realtime", _name())
    for _ in range(5):
        assert_refused(broker, thief, login.client_id or "", 5)
    assert_still_delivering(device, watcher, telemetry_topic(home, "d1", "t"))
