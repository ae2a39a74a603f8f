"""The ingest app: ``create_app(settings=None)`` and its lifespan (the composition root).

``create_app`` builds every object (:class:`~hearth.ingest.state.IngestState`) and nothing
connects yet. The lifespan starts them: wait for PostgreSQL and migrate schema ``ingest``
(safe with several replicas: alembic runs under an advisory lock), open the registry
clients, start the batch writer, the id-purge task and the storage job
(:mod:`hearth.ingest.maintenance`: partitions, rollups, retention), then the MQTT
consumer (telemetry, and the system bus for :class:`~hearth.ingest.bus.SystemBus`).
``/readyz`` checks the database, the subscription, the device catalogue
(:mod:`hearth.ingest.catalogue`: the registry's retained snapshots have arrived) and the
writer. Stopping: stop the consumer (retained
``disconnect`` status), cancel the writer (an unacknowledged batch is redelivered at the
next start), close the registry clients and the database pool.

The history API's routes are in :mod:`hearth.ingest.api`.

Run it: ``hearth-ingest serve`` or ``uvicorn --factory hearth.ingest.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from hearth.common.db import Transactions, create_engine, database_check, session_factory
from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import RevocationMarks, TokenVerifier, verifier_from_settings
from hearth.common.web import create_service_app, service_state
from hearth.ingest import openapi_examples
from hearth.ingest.api import ROUTERS
from hearth.ingest.batcher import Inbox
from hearth.ingest.bus import SYSTEM_FILTERS, SystemBus
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.config import IngestSettings
from hearth.ingest.consumer import ConsumerConfig, TelemetryConsumer
from hearth.ingest.history import HistoryLimits, HistoryService
from hearth.ingest.history_repository import HistoryRepository
from hearth.ingest.homes import HomeZones
from hearth.ingest.hooks import TestHolds
from hearth.ingest.maintenance import StorageMaintenance, StoragePolicy
from hearth.ingest.maintenance_repository import MaintenanceRepository
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.migrate import MIGRATIONS, migrate
from hearth.ingest.rejects import RejectLimiter, RejectLog
from hearth.ingest.repository import IngestRepository
from hearth.ingest.retention import RetentionService
from hearth.ingest.service import IngestService
from hearth.ingest.state import IngestState
from hearth.ingest.writer import BatchWriter

__all__ = ["create_app", "lifespan"]

log = logging.getLogger(__name__)


def create_app(
    settings: IngestSettings | None = None,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
    token_verifier: TokenVerifier | None = None,
) -> FastAPI:
    """The ingest service's app; settings from the environment unless given.

    ``registry_transport`` replaces the network for registry calls and ``token_verifier``
    the verifier built from the settings (tests).
    """
    settings = settings if settings is not None else IngestSettings.load()
    engine = create_engine(
        settings.database, schema=MIGRATIONS.schema, application_name=settings.client_id
    )
    sessions = session_factory(engine)
    registry = CollectorRegistry(auto_describe=True)
    metrics = IngestMetrics(registry)
    marks = RevocationMarks()
    verifier = token_verifier or verifier_from_settings(settings, marks=marks)
    registry_client = RegistryClient(
        settings.registry_url,
        timeout=settings.registry_timeout,
        max_entries=settings.authorize_cache_size,
        transport=registry_transport,
    )
    zones = HomeZones(
        settings.registry_url, timeout=settings.registry_timeout, transport=registry_transport
    )
    bus = SystemBus(registry_client, zones, marks)
    inbox = Inbox()
    catalogue = DeviceCatalogue()
    consumer = TelemetryConsumer(
        ConsumerConfig.from_settings(settings, SYSTEM_FILTERS),
        inbox,
        on_system=bus.deliver,
        catalogue=catalogue,
    )
    holds = TestHolds(settings.test_hold_dir)
    writes = Transactions(sessions, IngestRepository)
    service = IngestService(
        writes,
        catalogue=catalogue,
        limiter=RejectLimiter(settings.rejects_per_second, settings.rejects_burst),
        holds=holds,
        keep_bytes=settings.reject_payload_bytes,
        reject_log=RejectLog(),
    )
    history = HistoryService(
        Transactions(sessions, HistoryRepository),
        writes,
        registry_client,
        zones,
        HistoryLimits.from_settings(settings),
    )
    policy = StoragePolicy.from_settings(settings)
    maintenance_transactions = Transactions(sessions, MaintenanceRepository)
    maintenance = StorageMaintenance(maintenance_transactions, policy)
    retention = RetentionService(maintenance_transactions, registry_client, policy)
    writer = BatchWriter(
        inbox=inbox,
        consumer=consumer,
        catalogue=catalogue,
        service=service,
        metrics=metrics,
        holds=holds,
        max_rows=settings.batch_max_rows,
        max_delay=settings.batch_max_delay,
    )
    state = IngestState(
        settings=settings,
        engine=engine,
        metrics=metrics,
        inbox=inbox,
        catalogue=catalogue,
        consumer=consumer,
        service=service,
        writer=writer,
        registry=registry_client,
        zones=zones,
        bus=bus,
        history=history,
        maintenance=maintenance,
        retention=retention,
    )

    async def broker_check() -> None:
        metrics.connected.set(1 if consumer.subscribed else 0)
        if not consumer.subscribed:
            raise ConnectionError("not subscribed at the broker")

    async def catalogue_check() -> None:
        if not catalogue.ready:
            raise ConnectionError("the registry's device snapshots have not all arrived")

    async def writer_check() -> None:
        # The writer only ends on a bug: nothing would be stored or acknowledged again.
        if writer.stopped:
            raise RuntimeError("the batch writer stopped")

    app = create_service_app(
        settings,
        title="Hearth ingest",
        description="Telemetry from MQTT into PostgreSQL, acknowledged only after commit; "
        "its history under /telemetry/homes/{home}/..., authorised by the registry.",
        lifespan=lifespan,
        token_verifier=verifier,
        state=state,
        metrics_registry=registry,
        max_body_bytes=settings.import_max_bytes,
        readiness_checks={
            "database": database_check(engine),
            "broker": broker_check,
            "catalogue": catalogue_check,
            "writer": writer_check,
        },
        openapi_tags=openapi_examples.TAGS,
        openapi_examples=openapi_examples.EXAMPLES,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start what ``create_app`` built (see the module docstring), stop it at the end."""
    state = service_state(app, IngestState)
    tasks: list[asyncio.Task[None]] = []
    stack = contextlib.AsyncExitStack()
    try:
        await migrate(state.settings)
        await stack.enter_async_context(state.registry)
        await stack.enter_async_context(state.zones)
        loop = asyncio.get_running_loop()
        state.inbox.attach(loop)
        state.bus.attach(loop)
        state.catalogue.attach(loop)
        tasks = [
            asyncio.create_task(state.writer.run(), name="ingest-writer"),
            asyncio.create_task(_purge_loop(state), name="ingest-purge"),
            asyncio.create_task(_maintenance_loop(state), name="ingest-maintenance"),
        ]
        state.consumer.start()
        try:
            yield
        finally:
            await asyncio.to_thread(state.consumer.stop)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stack.aclose()
        await state.engine.dispose()


async def _purge_loop(state: IngestState) -> None:  # pragma: no cover - a timing loop
    """Every ``cleanup_interval``: forget message ids older than ``seen_ids_ttl``."""
    settings = state.settings
    while True:
        await asyncio.sleep(settings.cleanup_interval)
        try:
            purged = await state.service.purge_seen_ids(settings.seen_ids_ttl)
            state.metrics.seen_ids_purged.inc(purged)
        except Exception:
            log.exception("purging old message ids failed")


async def _maintenance_loop(state: IngestState) -> None:  # pragma: no cover - a timing loop
    """At start, then every ``maintenance_interval``: the storage job (partitions, rollups,
    retention; :mod:`hearth.ingest.maintenance`), advisory-locked across replicas."""
    while True:
        try:
            await state.maintenance.run_once()
        except Exception:
            log.exception("storage maintenance failed")
        await asyncio.sleep(state.settings.maintenance_interval)
