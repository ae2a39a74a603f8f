"""DiscoveredMetrics: the registry's side of ``hearth-sys/ingest/discovered/{home}/{device}``.

Ingest reports a metric it stored for a device that does not declare it
(:class:`~hearth.common.capability_feed.DiscoveredMetric`). The topic and payload are
validated (a bad one is logged and counted, never raised), then
:meth:`RegistryService.add_discovered_metric` adds it: bounded (at most
``MAX_METRICS`` metrics per device) and idempotent.
"""

from __future__ import annotations

import logging

import aiomqtt

from hearth.common.capability_feed import DiscoveredMetric
from hearth.common.messages import MessageError
from hearth.common.routing import payload_bytes
from hearth.common.topics import TopicError, parse_discovered_topic
from hearth.registry.service import RegistryService

__all__ = ["DiscoveredMetrics"]

log = logging.getLogger(__name__)


class DiscoveredMetrics:
    """Applies ingest's discovered-metric reports (see the module docstring)."""

    def __init__(self, service: RegistryService) -> None:
        self._service = service
        self.added = 0
        """Metrics added to a device."""
        self.invalid = 0
        """Reports refused as malformed."""

    async def handle(self, message: aiomqtt.Message) -> None:
        """Handle one report (a router handler)."""
        topic = str(message.topic)
        try:
            home, device = parse_discovered_topic(topic)
            report = DiscoveredMetric.from_bytes(payload_bytes(message))
        except (TopicError, MessageError) as exc:
            self.invalid += 1
            log.warning("ignoring a malformed discovered metric", extra={"error": str(exc)})
            return
        if await self._service.add_discovered_metric(home, device, report.metric):
            self.added += 1
