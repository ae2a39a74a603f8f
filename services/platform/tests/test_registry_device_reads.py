"""The registry's broker role on the real broker: it hears devices, it cannot be one.

Issue 15: the registry follows every device's ``state``, ``status``, ``ack`` and (for
``silent``) ``telemetry``, retained messages included, and publishes commands and the
``silent`` status. It may not read commands or speak as a device (its state, telemetry or
ack). Every refusal is followed by an allowed message that must arrive.
"""

from __future__ import annotations

from hearth.common.topics import ack_topic, command_topic, state_topic, telemetry_topic
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker

NOT_AUTHORIZED = 0x87


def test_the_registry_reads_devices_retained_included(
    broker: RunningBroker, mqtt_client: MqttClientFactory, device_login: DeviceLoginFactory
) -> None:
    device = mqtt_client(broker, device_login("role-home", "lamp"))
    for topic in (
        state_topic("role-home", "lamp", "power"),
        telemetry_topic("role-home", "lamp", "t"),
    ):
        assert not device.publish_and_wait(topic, b"1", retain=True).is_failure
    registry = mqtt_client(broker, "registry")
    for kind in ("state/+", "telemetry/+", "status", "ack"):
        granted = registry.subscribe_and_wait(f"hearth/+/+/{kind}")
        assert not granted[0].is_failure, (kind, granted)
    for topic in (
        state_topic("role-home", "lamp", "power"),
        telemetry_topic("role-home", "lamp", "t"),
    ):
        [message] = registry.wait_for_messages(1, topic, timeout=10)
        assert message.retain
    assert not device.publish_and_wait(ack_topic("role-home", "lamp"), b"{}").is_failure
    registry.wait_for_messages(1, ack_topic("role-home", "lamp"), timeout=10)


def test_the_registry_may_not_read_commands_or_speak_as_a_device(
    broker: RunningBroker, mqtt_client: MqttClientFactory, device_login: DeviceLoginFactory
) -> None:
    registry = mqtt_client(broker, "registry")
    refused = registry.subscribe_and_wait("hearth/+/+/command/#")
    assert refused[0].value == NOT_AUTHORIZED
    monitor = mqtt_client(broker, "realtime")
    monitor.subscribe_and_wait("hearth/role-home/mute/#")
    for topic in (
        state_topic("role-home", "mute", "power"),
        telemetry_topic("role-home", "mute", "t"),
        ack_topic("role-home", "mute"),
    ):
        assert registry.publish_and_wait(topic, b"1").value == NOT_AUTHORIZED
    # The positive control: its command arrives, and it is the only message there.
    command = command_topic("role-home", "mute", "power")
    assert not registry.publish_and_wait(command, b"{}").is_failure
    monitor.wait_for_messages(1, timeout=10)
    assert [m.topic for m in monitor.received()] == [command]
