"""SnapshotPublisher: each device's capability snapshot, retained on the system bus.

After every committed change of a device the registry publishes its
:class:`~hearth.common.capability_feed.DeviceSnapshot` retained at QoS 1 on
``hearth-sys/registry/devices/{home}/{device}`` (before the change event, so a receiver
reacting to the event finds it), and an empty retained payload when the device is deleted
(which clears the retained message). Ingest keeps these snapshots to check readings.

On every start the registry republishes the snapshot of every live device (retained
messages the broker lost in its crash window come back). A snapshot that cannot be
published is logged and counted, never raised: the next change or start publishes it.
"""

from __future__ import annotations

import logging

from hearth.common.capability_feed import DeviceSnapshot
from hearth.common.mqtt import MqttConnection, MqttUnavailable
from hearth.common.topics import registry_device_topic

__all__ = ["SnapshotPublisher"]

log = logging.getLogger(__name__)


class SnapshotPublisher:
    """Publishes device snapshots through the service's broker connection."""

    def __init__(self, mqtt: MqttConnection, *, wait: float = 2.0) -> None:
        self._mqtt = mqtt
        self._wait = wait
        self.published = 0
        """Snapshots (and removals) the broker acknowledged."""
        self.failed = 0
        """Snapshots that could not be published."""

    async def publish(self, snapshot: DeviceSnapshot) -> None:
        """Publish a live device's snapshot (retained, QoS 1)."""
        await self._send(snapshot.home, snapshot.device, snapshot.to_bytes())

    async def remove(self, home: str, device: str) -> None:
        """Clear a deleted device's retained snapshot (an empty retained payload)."""
        await self._send(home, device, b"")

    async def _send(self, home: str, device: str, payload: bytes) -> None:
        try:
            await self._mqtt.publish(
                registry_device_topic(home, device),
                payload,
                qos=1,
                retain=True,
                wait=self._wait,
            )
        except MqttUnavailable:
            self.failed += 1
            log.warning("device snapshot not published", extra={"home": home, "device": device})
        else:
            self.published += 1
