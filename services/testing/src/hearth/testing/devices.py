"""Devices as ingest learns them: publish a device's capability snapshot as the registry would.

Tests that publish telemetry without running the registry register their devices here:
:func:`register_device` publishes the retained
:class:`~hearth.common.capability_feed.DeviceSnapshot` on
``hearth-sys/registry/devices/{home}/{device}`` (what the registry publishes after creating
a device), through a client logged in with a registry login (only the registry may publish
there: ``RunningBroker.service_login("registry", "<replica of the test's own>")``).
:func:`forget_device` clears it, as deleting the device does.
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.capabilities import Metric
from hearth.common.capability_feed import DeviceSnapshot
from hearth.common.topics import registry_device_topic
from hearth.testing.broker import MqttTestClient

__all__ = ["forget_device", "register_device"]


def register_device(
    client: MqttTestClient,
    home: str,
    device: str,
    metrics: Sequence[str | Metric] = (),
    *,
    refuse_undeclared: bool = False,
) -> DeviceSnapshot:
    """Publish ``device``'s snapshot (retained, QoS 1) and wait for the broker's PUBACK.

    ``metrics`` are names (no unit or range) or :class:`Metric` values. Once the broker
    acknowledged it, a running ingest replica receives it before any reading published
    after this call.
    """
    snapshot = DeviceSnapshot(
        home=home,
        device=device,
        metrics=[m if isinstance(m, Metric) else Metric(name=m) for m in metrics],
        refuse_undeclared=refuse_undeclared,
    )
    code = client.publish_and_wait(
        registry_device_topic(home, device), snapshot.to_bytes(), qos=1, retain=True
    )
    if code is not None and code.is_failure:
        raise RuntimeError(f"the broker refused the snapshot of {home}/{device}: {code}")
    return snapshot


def forget_device(client: MqttTestClient, home: str, device: str) -> None:
    """Clear ``device``'s retained snapshot (the registry does this when it is deleted)."""
    client.publish_and_wait(registry_device_topic(home, device), b"", qos=1, retain=True)
