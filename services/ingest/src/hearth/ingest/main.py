"""The ingest app: ``create_app(settings=None)`` and its lifespan (the composition root).

Startup: wait for PostgreSQL, migrate schema ``ingest`` (safe with several replicas:
alembic runs under an advisory lock), start the batch writer and the id-purge task,
then the MQTT consumer. ``/readyz`` checks the database and the subscription.
Shutdown: stop the consumer (retained ``disconnect`` status), cancel the writer (an
unacknowledged batch is redelivered at the next start), dispose of the engine.

Run it: ``hearth-ingest serve`` or ``uvicorn --factory hearth.ingest.main:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from hearth.common.db import (
    create_engine,
    database_check,
    wait_for_database,
)
from hearth.common.migrations import Migrations
from hearth.common.web import add_readiness_check, create_service_app, metrics_registry
from hearth.ingest.batcher import Inbox
from hearth.ingest.config import IngestSettings
from hearth.ingest.consumer import ConsumerConfig, TelemetryConsumer
from hearth.ingest.hooks import TestHolds
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.models import IngestModel
from hearth.ingest.rejects import RejectLimiter
from hearth.ingest.repository import purge_seen_ids
from hearth.ingest.writer import BatchWriter

__all__ = ["MIGRATIONS", "create_app", "migrate"]

log = logging.getLogger(__name__)

MIGRATIONS = Migrations("hearth.ingest:migrations", IngestModel.metadata)
"""Ingest's alembic migrations (schema ``ingest``)."""


async def migrate(settings: IngestSettings) -> None:
    """Wait for the database, then migrate it to head."""
    await wait_for_database(settings.database, timeout=settings.database_wait)
    await MIGRATIONS.upgrade(settings.database)


async def _purge_loop(
    engine: object, settings: IngestSettings, metrics: IngestMetrics
) -> None:  # pragma: no cover - timing loop; the purge itself is tested
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    while True:
        await asyncio.sleep(settings.cleanup_interval)
        try:
            async with engine.begin() as conn:
                metrics.seen_ids_purged.inc(await purge_seen_ids(conn, settings.seen_ids_ttl))
        except Exception:
            log.exception("purging old message ids failed")


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """The ingest service's app; settings from the environment unless given."""
    settings = settings if settings is not None else IngestSettings.load()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings)
        engine = create_engine(
            settings.database, schema="ingest", application_name=settings.client_id
        )
        metrics = IngestMetrics(metrics_registry(app))
        inbox = Inbox(asyncio.get_running_loop())
        consumer = TelemetryConsumer(ConsumerConfig.from_settings(settings), inbox)
        writer = BatchWriter(
            inbox=inbox,
            consumer=consumer,
            engine=engine,
            metrics=metrics,
            limiter=RejectLimiter(settings.rejects_per_second, settings.rejects_burst),
            holds=TestHolds(settings.test_hold_dir),
            max_rows=settings.batch_max_rows,
            max_delay=settings.batch_max_delay,
            keep_bytes=settings.reject_payload_bytes,
        )

        async def broker_check() -> None:
            metrics.connected.set(1 if consumer.subscribed else 0)
            if not consumer.subscribed:
                raise ConnectionError("not subscribed at the broker")

        tasks = [
            asyncio.create_task(writer.run(), name="ingest-writer"),
            asyncio.create_task(_purge_loop(engine, settings, metrics), name="ingest-purge"),
        ]

        async def writer_check() -> None:
            # The writer only ends on a bug: nothing would be stored or acknowledged again.
            if tasks[0].done():
                raise RuntimeError("the batch writer stopped")

        add_readiness_check(app, "database", database_check(engine))
        add_readiness_check(app, "broker", broker_check)
        add_readiness_check(app, "writer", writer_check)
        app.state.consumer = consumer
        app.state.writer = writer
        consumer.start()
        try:
            yield
        finally:
            await asyncio.to_thread(consumer.stop)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await engine.dispose()

    return create_service_app(
        settings,
        title="Hearth ingest",
        description="Telemetry from MQTT into PostgreSQL, acknowledged only after commit.",
        lifespan=lifespan,
    )
