"""The capability feed between the registry and ingest, on the system bus.

- The registry publishes each live device's :class:`DeviceSnapshot` **retained** on
  ``hearth-sys/registry/devices/{home}/{device}`` (QoS 1) after every committed change of
  the device, and an empty retained payload when the device is deleted. Ingest holds the
  latest snapshot of every device (its only source: ingest has no credential to ask the
  registry's API itself).
- Ingest publishes a :class:`DiscoveredMetric` on ``hearth-sys/ingest/discovered/{home}/{device}``
  (QoS 1) when a device reports a metric it does not declare; the registry adds the metric
  (name only: no unit or range) unless the device refuses undeclared metrics, already has it,
  or has :data:`MAX_METRICS` metrics, and publishes the new snapshot. Reporting twice changes
  nothing.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hearth.common.capabilities import Metric
from hearth.common.inputs import Slug
from hearth.common.messages import Message

__all__ = ["MAX_METRICS", "DeviceSnapshot", "DiscoveredMetric"]

MAX_METRICS = 64
"""The most metrics a device has, declared and discovered together (the registry's API bound)."""


class DeviceSnapshot(Message):
    """What ingest needs to know of a live device: its metrics and whether it refuses others."""

    home: Slug
    device: Slug
    metrics: Annotated[list[Metric], Field(max_length=MAX_METRICS)]
    refuse_undeclared: bool = False

    def metric(self, name: str) -> Metric | None:
        """The declared (or discovered) metric ``name``, or ``None``."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        return None


class DiscoveredMetric(Message):
    """An undeclared metric ingest stored for a device (the topic names home and device)."""

    metric: Slug
