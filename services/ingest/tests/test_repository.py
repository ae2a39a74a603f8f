"""The dedup SQL of write_batch against real PostgreSQL: ts-based, id-based, bare; the purge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.common.db import Transactions, create_engine, session_factory
from hearth.ingest.migrate import MIGRATIONS
from hearth.ingest.repository import IngestRepository, ReadingRow, RejectRow, WriteResult
from hearth.testing.database import fetch, fetchval

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def reading(
    value: float,
    *,
    ts: datetime | None = None,
    msg_id: str | None = None,
    device: str = "d1",
    metric: str = "temp",
    received_at: datetime = NOW,
) -> ReadingRow:
    return ReadingRow(
        home="h1",
        device=device,
        metric=metric,
        value=value,
        is_bool=False,
        ts=ts,
        msg_id=msg_id,
        received_at=received_at,
    )


@pytest.fixture
async def engine(ingest_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(ingest_db, schema="ingest")
    yield engine
    await engine.dispose()


async def write(
    engine: AsyncEngine, rows: list[ReadingRow], rejects: Sequence[RejectRow] = ()
) -> WriteResult:
    async with transactions(engine)() as repo:
        result = await repo.write_batch(rows, rejects)
        await repo.commit()
    return result


def transactions(engine: AsyncEngine) -> Transactions[IngestRepository]:
    return Transactions(session_factory(engine), IngestRepository)


async def values(url: str) -> list[float]:
    rows = await fetch(url, "SELECT value FROM ingest.telemetry ORDER BY value")
    return [r["value"] for r in rows]


async def test_migrations_match_the_models(ingest_db: str) -> None:
    assert await MIGRATIONS.diff(ingest_db) == []
    assert await MIGRATIONS.current(ingest_db) == MIGRATIONS.head()


async def test_rows_with_a_device_ts_are_deduplicated_on_device_metric_ts(
    engine: AsyncEngine, ingest_db: str
) -> None:
    t1, t2 = NOW - timedelta(seconds=2), NOW - timedelta(seconds=1)
    first = await write(engine, [reading(1, ts=t1), reading(2, ts=t2), reading(1, ts=t1)])
    assert (first.stored, first.duplicates) == (2, 1)  # a copy inside one batch

    again = await write(
        engine,
        [
            reading(1, ts=t1),  # redelivered: absorbed
            reading(3, ts=t1, metric="hum"),  # same ts, other metric: a new row
            reading(4, ts=t1, device="d2"),  # same ts, other device: a new row
        ],
    )
    assert (again.stored, again.duplicates) == (2, 1)
    assert await values(ingest_db) == [1, 2, 3, 4]
    stored = await fetch(ingest_db, "SELECT ts, device_ts FROM ingest.telemetry WHERE value = 1")
    assert [(r["ts"], r["device_ts"]) for r in stored] == [(t1, True)]


async def test_rows_with_only_an_id_are_deduplicated_through_the_side_table(
    engine: AsyncEngine, ingest_db: str
) -> None:
    first = await write(
        engine, [reading(1, msg_id="b1-1"), reading(2, msg_id="b1-2"), reading(1, msg_id="b1-1")]
    )
    assert (first.stored, first.duplicates) == (2, 1)
    later = NOW + timedelta(seconds=5)
    again = await write(
        engine,
        [
            reading(1, msg_id="b1-1", received_at=later),  # redelivered: absorbed
            reading(5, msg_id="b1-1", device="d2", received_at=later),  # other device: new
            reading(6, msg_id="b2-1", received_at=later),  # new boot: new
        ],
    )
    assert (again.stored, again.duplicates) == (2, 1)
    assert await values(ingest_db) == [1, 2, 5, 6]
    # the row's ts is the receive time of the first copy, marked as not the device's
    row = await fetch(ingest_db, "SELECT ts, device_ts FROM ingest.telemetry WHERE value = 1")
    assert [(r["ts"], r["device_ts"]) for r in row] == [(NOW, False)]
    assert await fetchval(ingest_db, "SELECT count(*) FROM ingest.seen_msg_id") == 4


async def test_bare_readings_are_stored_every_time_they_arrive(
    engine: AsyncEngine, ingest_db: str
) -> None:
    # two bare values in the same millisecond, then a redelivery: all kept (at least once)
    result = await write(engine, [reading(7), reading(7), reading(8, ts=NOW)])
    assert (result.stored, result.duplicates) == (3, 0)
    result = await write(engine, [reading(7)])
    assert (result.stored, result.duplicates) == (1, 0)
    assert await values(ingest_db) == [7, 7, 7, 8]
    # a bare value received at the very ts a device sent does not collide with it
    kinds = await fetch(
        ingest_db, "SELECT device_ts, count(*) AS n FROM ingest.telemetry GROUP BY 1 ORDER BY 1"
    )
    assert [(r["device_ts"], r["n"]) for r in kinds] == [(False, 3), (True, 1)]


async def test_rejects_commit_with_the_batch(engine: AsyncEngine, ingest_db: str) -> None:
    reject = RejectRow(
        received_at=NOW,
        topic="hearth/h1/d1/telemetry/temp",
        reason="not_a_number",
        detail="empty payload",
        payload=b"",
        payload_size=0,
    )
    result = await write(engine, [], [reject])
    assert (result.stored, result.rejects) == (0, 1)
    rows = await fetch(ingest_db, "SELECT topic, reason, payload FROM ingest.reject")
    assert [(r["topic"], r["reason"], r["payload"]) for r in rows] == [
        ("hearth/h1/d1/telemetry/temp", "not_a_number", b"")
    ]


async def test_a_rolled_back_batch_leaves_nothing(engine: AsyncEngine, ingest_db: str) -> None:
    async def crash_before_commit() -> None:
        async with transactions(engine)() as repo:
            await repo.write_batch([reading(1, ts=NOW), reading(2, msg_id="b-1")])
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash"):
        await crash_before_commit()
    assert await values(ingest_db) == []
    assert await fetchval(ingest_db, "SELECT count(*) FROM ingest.seen_msg_id") == 0
    # and the same batch then goes in whole (its id was not remembered by the rollback)
    result = await write(engine, [reading(1, ts=NOW), reading(2, msg_id="b-1")])
    assert result.stored == 2


async def test_purge_forgets_ids_older_than_the_ttl(engine: AsyncEngine, ingest_db: str) -> None:
    now = datetime.now(UTC)
    await write(
        engine,
        [
            reading(1, msg_id="old-1", received_at=now - timedelta(hours=25)),
            reading(2, msg_id="new-1", received_at=now - timedelta(hours=1)),
        ],
    )
    async with transactions(engine)() as repo:
        assert await repo.purge_seen_ids(24 * 3600) == 1
        await repo.commit()
    rows = await fetch(ingest_db, "SELECT msg_id FROM ingest.seen_msg_id")
    assert [r["msg_id"] for r in rows] == ["new-1"]
    # the forgotten id is accepted again (the 24 h window is over)
    result = await write(engine, [reading(1, msg_id="old-1", received_at=now)])
    assert result.stored == 1
