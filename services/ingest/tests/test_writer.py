"""The batch writer on real PostgreSQL: a failed write acknowledges nothing and loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.common.capabilities import Metric
from hearth.common.capability_feed import DeviceSnapshot
from hearth.common.db import Transactions, create_engine, session_factory
from hearth.common.topics import registry_device_topic
from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.hooks import TestHolds
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.rejects import RejectLimiter
from hearth.ingest.repository import IngestRepository, ReadingRow, RejectRow, WriteResult
from hearth.ingest.service import IngestService
from hearth.ingest.writer import BatchWriter
from hearth.testing.database import fetch


class RecordingConsumer:
    """Stands in for the paho consumer: records each ack with the write attempt before it."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, int]] = []
        self.attempts = 0

    def ack(self, delivery: Delivery) -> bool:
        self.acks.append((delivery.mid, self.attempts))
        return True


@pytest.fixture
async def engine(ingest_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(ingest_db, schema="ingest")
    yield engine
    await engine.dispose()


async def test_a_failed_write_is_retried_and_acknowledged_only_after_its_commit_in_order(
    engine: AsyncEngine, ingest_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = RecordingConsumer()

    write_batch = IngestRepository.write_batch

    async def flaky_write(
        repo: IngestRepository,
        readings: Sequence[ReadingRow],
        rejects: Sequence[RejectRow] = (),
    ) -> WriteResult:
        consumer.attempts += 1
        result = await write_batch(repo, readings, rejects)  # rows written in the transaction...
        if consumer.attempts == 1:
            raise OSError("connection lost")  # ...then the database goes away: rolled back
        return result

    monkeypatch.setattr(IngestRepository, "write_batch", flaky_write)
    registry = CollectorRegistry()
    catalogue = DeviceCatalogue()
    catalogue.apply(
        registry_device_topic("h1", "d1"),
        DeviceSnapshot(home="h1", device="d1", metrics=[Metric(name="t")]).to_bytes(),
    )
    catalogue.attach(asyncio.get_running_loop())
    catalogue.barrier(catalogue.expect_barrier().encode())
    service = IngestService(
        Transactions(session_factory(engine), IngestRepository),
        catalogue=catalogue,
        limiter=RejectLimiter(10, 100),
        holds=TestHolds(None),
    )
    writer = BatchWriter(
        inbox=Inbox(asyncio.get_running_loop()),
        consumer=cast(Any, consumer),
        catalogue=catalogue,
        service=service,
        metrics=IngestMetrics(registry),
        holds=TestHolds(None),
    )
    now = datetime.now(UTC)
    payloads = [
        f'{{"value": 1, "ts": "{(now - timedelta(seconds=5)).isoformat()}"}}'.encode(),
        b'{"value": 2, "id": "b-1"}',
        b"3",
        b"not a number",
        b"4",
    ]
    batch = [
        Delivery(
            mid=mid,
            qos=1,
            topic="hearth/h1/d1/telemetry/t",
            payload=payload,
            retain=False,
            received_at=now,
            received_mono=time.monotonic(),
            generation=1,
        )
        for mid, payload in zip([7, 3, 9, 1, 5], payloads, strict=True)
    ]
    result = await writer.process(batch)

    assert consumer.attempts == 2
    assert consumer.acks == [(7, 2), (3, 2), (9, 2), (1, 2), (5, 2)]  # receive order, after
    assert (result.stored, result.duplicates, result.rejects) == (4, 0, 1)
    rows = await fetch(ingest_db, "SELECT value FROM ingest.telemetry ORDER BY value")
    assert [r["value"] for r in rows] == [1.0, 2.0, 3.0, 4.0]  # the failed attempt left nothing
    rejects = await fetch(ingest_db, "SELECT reason FROM ingest.reject")
    assert [r["reason"] for r in rejects] == ["not_a_number"]
    assert registry.get_sample_value("hearth_ingest_write_errors_total") == 1
    assert registry.get_sample_value("hearth_ingest_rows_stored_total") == 4
