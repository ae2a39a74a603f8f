"""DeviceBus: what the registry publishes on devices' own topics (commands, ``silent``).

Commands go to ``hearth/{home}/{device}/command/{property}`` at QoS 1, not retained, with
the MQTT 5 message expiry interval set from the command's ``ttl``: the broker drops a
command still queued for a sleeping device when it expires, so a device that wakes later
never sees it. Mosquitto counts expiry in whole seconds of its own clock (a message may
outlive its interval by up to a second), so the interval asked for is ``ttl - 1`` (at
least 1): the broker never hands over a command more than a moment past ``expires_at``,
and the device's own check of ``expires_at`` covers the rest.

The ``silent`` status goes to ``hearth/{home}/{device}/status``, retained, as the
device's own statuses do. A publish the broker does not acknowledge within ``wait``
seconds raises :class:`~hearth.registry.errors.BrokerUnavailable` (503).
"""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hearth.common.messages import Command, Status
from hearth.common.mqtt import MqttConnection, MqttUnavailable
from hearth.common.topics import command_topic, status_topic
from hearth.registry.errors import BrokerUnavailable

__all__ = ["DeviceBus", "broker_expiry"]


def broker_expiry(ttl: int) -> int:
    """The MQTT 5 message expiry interval for a command valid ``ttl`` seconds."""
    return max(1, ttl - 1)


class DeviceBus:
    """Publishes to devices' topics through the registry's broker connection."""

    def __init__(self, mqtt: MqttConnection, *, wait: float = 5.0) -> None:
        self._mqtt = mqtt
        self._wait = wait

    async def send_command(
        self, home: str, device: str, prop: str, command: Command, *, ttl: int | None
    ) -> None:
        """Publish ``command`` (QoS 1; expiring after ``ttl`` seconds at the broker too)."""
        properties = None
        if ttl is not None:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = broker_expiry(ttl)
        await self._publish(
            command_topic(home, device, prop), command.to_bytes(), False, properties
        )

    async def publish_status(self, home: str, device: str, status: Status) -> None:
        """Publish a device's retained status (the registry's ``silent``)."""
        await self._publish(status_topic(home, device), status.to_bytes(), True, None)

    async def _publish(
        self, topic: str, payload: bytes, retain: bool, properties: Properties | None
    ) -> None:
        try:
            await self._mqtt.publish(
                topic, payload, qos=1, retain=retain, properties=properties, wait=self._wait
            )
        except MqttUnavailable as exc:
            raise BrokerUnavailable(f"the broker did not take the message: {exc}") from None
