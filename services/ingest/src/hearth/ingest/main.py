"""The ingest app: ``create_app(settings=None)`` and its lifespan (the composition root).

``create_app`` builds every object (:class:`~hearth.ingest.state.IngestState`) and nothing
connects yet. The lifespan starts them: wait for PostgreSQL and migrate schema ``ingest``
(safe with several replicas: alembic runs under an advisory lock), start the batch writer
and the id-purge task, then the MQTT consumer. ``/readyz`` checks the database, the
subscription and the writer. Stopping: stop the consumer (retained ``disconnect``
status), cancel the writer (an unacknowledged batch is redelivered at the next start),
close the database pool.

Run it: ``hearth-ingest serve`` or ``uvicorn --factory hearth.ingest.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from hearth.common.db import Transactions, create_engine, database_check, session_factory
from hearth.common.web import create_service_app, service_state
from hearth.ingest.batcher import Inbox
from hearth.ingest.config import IngestSettings
from hearth.ingest.consumer import ConsumerConfig, TelemetryConsumer
from hearth.ingest.hooks import TestHolds
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.migrate import MIGRATIONS, migrate
from hearth.ingest.rejects import RejectLimiter
from hearth.ingest.repository import IngestRepository
from hearth.ingest.service import IngestService
from hearth.ingest.state import IngestState
from hearth.ingest.writer import BatchWriter

__all__ = ["create_app", "lifespan"]

log = logging.getLogger(__name__)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """The ingest service's app; settings from the environment unless given."""
    settings = settings if settings is not None else IngestSettings.load()
    engine = create_engine(
        settings.database, schema=MIGRATIONS.schema, application_name=settings.client_id
    )
    registry = CollectorRegistry(auto_describe=True)
    metrics = IngestMetrics(registry)
    inbox = Inbox()
    consumer = TelemetryConsumer(ConsumerConfig.from_settings(settings), inbox)
    holds = TestHolds(settings.test_hold_dir)
    service = IngestService(
        Transactions(session_factory(engine), IngestRepository),
        limiter=RejectLimiter(settings.rejects_per_second, settings.rejects_burst),
        holds=holds,
        keep_bytes=settings.reject_payload_bytes,
    )
    writer = BatchWriter(
        inbox=inbox,
        consumer=consumer,
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
        consumer=consumer,
        service=service,
        writer=writer,
    )

    async def broker_check() -> None:
        metrics.connected.set(1 if consumer.subscribed else 0)
        if not consumer.subscribed:
            raise ConnectionError("not subscribed at the broker")

    async def writer_check() -> None:
        # The writer only ends on a bug: nothing would be stored or acknowledged again.
        if writer.stopped:
            raise RuntimeError("the batch writer stopped")

    return create_service_app(
        settings,
        title="Hearth ingest",
        description="Telemetry from MQTT into PostgreSQL, acknowledged only after commit.",
        lifespan=lifespan,
        state=state,
        metrics_registry=registry,
        readiness_checks={
            "database": database_check(engine),
            "broker": broker_check,
            "writer": writer_check,
        },
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start what ``create_app`` built (see the module docstring), stop it at the end."""
    state = service_state(app, IngestState)
    tasks: list[asyncio.Task[None]] = []
    try:
        await migrate(state.settings)
        state.inbox.attach(asyncio.get_running_loop())
        tasks = [
            asyncio.create_task(state.writer.run(), name="ingest-writer"),
            asyncio.create_task(_purge_loop(state), name="ingest-purge"),
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
