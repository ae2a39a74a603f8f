"""IngestState: every object the ingest app is made of, built by ``create_app``.

The lifespan (:func:`hearth.ingest.main.lifespan`) only starts and stops them; routes read
them through ``StateDep`` (:mod:`hearth.ingest.api.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.common.registry_client import RegistryClient
from hearth.ingest.batcher import Inbox
from hearth.ingest.bus import SystemBus
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.config import IngestSettings
from hearth.ingest.consumer import TelemetryConsumer
from hearth.ingest.history import HistoryService
from hearth.ingest.homes import HomeZones
from hearth.ingest.maintenance import StorageMaintenance
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.retention import RetentionService
from hearth.ingest.service import IngestService
from hearth.ingest.writer import BatchWriter

__all__ = ["IngestState"]


@dataclass(frozen=True, eq=False)
class IngestState:
    """Ingest's parts: the consumer, the inbox, the writer, the rules, the database, and the
    history API's service with its registry clients and the system bus feeding their caches."""

    settings: IngestSettings
    engine: AsyncEngine
    metrics: IngestMetrics
    inbox: Inbox
    catalogue: DeviceCatalogue
    consumer: TelemetryConsumer
    service: IngestService
    writer: BatchWriter
    registry: RegistryClient
    zones: HomeZones
    bus: SystemBus
    history: HistoryService
    maintenance: StorageMaintenance
    retention: RetentionService
