"""Partitions, retention and rollups on a real PostgreSQL (the storage job run directly)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from hearth.common.db import Transactions, create_engine, session_factory
from hearth.ingest.maintenance import (
    MaintenanceReport,
    StorageMaintenance,
    StoragePolicy,
    add_months,
    month_of,
)
from hearth.ingest.maintenance_repository import MaintenanceRepository, RetentionEntry
from hearth.ingest.migrate import MIGRATIONS
from hearth.ingest.repository import IngestRepository, ReadingRow
from hearth.testing.database import execute, fetch, fetchval, run_async

NOW = datetime.now(UTC)
T = TypeVar("T")


class Storage:
    """The job and the write path over ``url``; each call on its own engine (``run_async``
    runs every call on a new event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.policy = StoragePolicy()

    def _run(
        self,
        call: Callable[
            [Transactions[MaintenanceRepository], Transactions[IngestRepository]], Awaitable[T]
        ],
    ) -> T:
        async def go() -> T:
            engine = create_engine(self.url, schema="ingest", application_name="test-storage")
            sessions = session_factory(engine)
            try:
                return await call(
                    Transactions(sessions, MaintenanceRepository),
                    Transactions(sessions, IngestRepository),
                )
            finally:
                await engine.dispose()

        return run_async(go())

    def run_job(self, now: datetime | None = None, **policy: int) -> MaintenanceReport:
        chosen = StoragePolicy(**policy) if policy else self.policy
        return self._run(lambda m, _: StorageMaintenance(m, chosen).run_once(now))

    def write(self, readings: list[ReadingRow]) -> int:
        async def go(_: object, writes: Transactions[IngestRepository]) -> int:
            async with writes() as repo:
                result = await repo.write_batch(readings)
                await repo.commit()
            return result.stored

        return self._run(go)

    def retention(self, entry: RetentionEntry) -> None:
        async def go(maintenance: Transactions[MaintenanceRepository], _: object) -> None:
            async with maintenance() as repo:
                await repo.set_retention(entry)
                await repo.commit()

        self._run(go)

    def partitions(self) -> set[str]:
        rows = run_async(
            fetch(
                self.url,
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'ingest_part' AND c.relkind IN ('r', 'p')",
            )
        )
        return {r[0] for r in rows}


@pytest.fixture
def storage(ingest_db: str) -> Storage:
    return Storage(ingest_db)


def reading(ts: datetime, value: float, device: str = "a", metric: str = "t") -> ReadingRow:
    return ReadingRow("home", device, metric, value, False, ts, None, ts)


def test_partitions_appear_ahead_of_time(storage: Storage) -> None:
    later = NOW + timedelta(days=200)
    ahead = [add_months(month_of(later), n) for n in range(4)]
    names = {f"telemetry_p{m:%Y_%m}" for m in ahead}
    assert not names & storage.partitions()  # made by the job, not by the migration
    report = storage.run_job(later)
    assert names <= set(report.created)
    assert names <= storage.partitions()
    assert {f"rollup_minute_p{m:%Y_%m}" for m in ahead} <= storage.partitions()
    # A second replica's run finds nothing to do.
    assert storage.run_job(later).created == []


def test_dedup_holds_across_a_partition_boundary(storage: Storage) -> None:
    boundary = add_months(month_of(NOW), 1)
    edge = [reading(boundary - timedelta(milliseconds=1), 1.0), reading(boundary, 2.0)]
    assert storage.write(edge) == 2
    assert storage.write(edge) == 0
    # A redelivered message (an id, no device time) received in the next month is absorbed.
    first = ReadingRow(
        "home", "a", "t", 3.0, False, None, "boot-1", boundary - timedelta(seconds=1)
    )
    again = ReadingRow(
        "home", "a", "t", 3.0, False, None, "boot-1", boundary + timedelta(seconds=1)
    )
    assert storage.write([first]) == 1
    assert storage.write([again]) == 0
    parts = run_async(
        fetch(storage.url, "SELECT DISTINCT tableoid::regclass::text FROM ingest.telemetry")
    )
    assert len(parts) == 2  # both sides of the boundary really are different partitions


def test_retention_drops_a_partition_while_rollups_survive(storage: Storage) -> None:
    old = month_of(NOW - timedelta(days=300)) + timedelta(days=3)
    storage.write([reading(old + timedelta(minutes=n), float(n)) for n in range(120)])
    storage.write([reading(NOW - timedelta(days=1), 5.0)])
    storage.run_job()  # makes the old month's partition, rolls up
    old_partition = f"telemetry_p{month_of(old):%Y_%m}"
    assert old_partition in storage.partitions()
    # The default retention (HEARTH_INGEST_RETENTION_DAYS) shortened to 200 days.
    report = storage.run_job(retention_days=200)
    assert old_partition in report.dropped
    assert old_partition not in storage.partitions()
    assert report.deleted == 0  # dropped, not deleted row by row
    raw = run_async(fetchval(storage.url, "SELECT count(*) FROM ingest.telemetry"))
    assert raw == 1
    minutes = run_async(
        fetchval(
            storage.url,
            "SELECT sum(count) FROM ingest.rollup_minute WHERE bucket < $1",
            NOW - timedelta(days=200),
        )
    )
    hours = run_async(
        fetch(
            storage.url,
            "SELECT count, min, max FROM ingest.rollup_hour WHERE bucket < $1 ORDER BY bucket",
            NOW - timedelta(days=200),
        )
    )
    assert minutes == 120
    assert [tuple(h) for h in hours] == [(60, 0.0, 59.0), (60, 60.0, 119.0)]


def test_per_device_and_metric_overrides_delete_in_bounded_batches(storage: Storage) -> None:
    month_ago = NOW - timedelta(days=30)
    rows = [
        reading(month_ago + timedelta(minutes=n), 1.0, device, metric)
        for n in range(50)
        for device, metric in (("a", "t"), ("b", "t"), ("b", "h"))
    ]
    storage.write(rows)
    storage.write([reading(NOW - timedelta(hours=1), 1.0, "a", "t")])
    storage.retention(RetentionEntry("home", "a", "", 7))  # device a: a week
    storage.retention(RetentionEntry("home", "", "h", 14))  # metric h of every device
    storage.retention(RetentionEntry("home", "b", "t", 400))  # longer than the home's: no effect
    report = storage.run_job(delete_batch=20)
    assert report.deleted == 100
    counts = run_async(
        fetch(
            storage.url,
            "SELECT device, metric, count(*) FROM ingest.telemetry GROUP BY 1, 2 ORDER BY 1, 2",
        )
    )
    assert [tuple(r) for r in counts] == [("a", "t", 1), ("b", "t", 50)]


def test_rollups_equal_raw_aggregates_across_boundaries_and_with_late_rows(
    storage: Storage,
) -> None:
    rng = random.Random(21)
    boundary = month_of(NOW)
    start = boundary - timedelta(hours=2)

    def burst(first: datetime, count: int, device: str) -> list[ReadingRow]:
        return [
            reading(
                first + timedelta(seconds=rng.randrange(0, 4 * 3600)), rng.uniform(-5, 5), device
            )
            for _ in range(count)
        ]

    storage.write(burst(start, 2000, "a") + burst(start, 500, "b"))
    storage.run_job()
    assert run_async(fetchval(storage.url, "SELECT count(*) FROM ingest.rollup_dirty")) == 0
    # Late rows into minutes already rolled up, and an import (a batch of old readings).
    storage.write(burst(start, 300, "a"))
    storage.write(burst(start - timedelta(days=20), 400, "b"))
    storage.run_job()
    for table, unit in (("rollup_minute", "minute"), ("rollup_hour", "hour")):
        mismatches = run_async(
            fetchval(
                storage.url,
                f"""
                WITH raw AS (
                    SELECT home, device, metric, date_trunc('{unit}', ts) AS bucket,
                           count(*) AS count, min(value) AS min, max(value) AS max,
                           sum(value) AS sum, (array_agg(value ORDER BY ts DESC, id DESC))[1]
                           AS last
                    FROM ingest.telemetry GROUP BY 1, 2, 3, 4
                )
                SELECT count(*) FROM raw FULL JOIN ingest.{table} AS r
                  USING (home, device, metric, bucket)
                WHERE raw.count IS DISTINCT FROM r.count OR raw.min IS DISTINCT FROM r.min
                   OR raw.max IS DISTINCT FROM r.max OR raw.last IS DISTINCT FROM r.last
                   OR abs(raw.sum - r.sum) > 1e-9 OR r.count IS NULL OR raw.count IS NULL
                """,  # noqa: S608 (the test's own constants)
            )
        )
        assert mismatches == 0, table
    rollups = run_async(fetchval(storage.url, "SELECT sum(count) FROM ingest.rollup_hour"))
    stored = run_async(fetchval(storage.url, "SELECT count(*) FROM ingest.telemetry"))
    assert rollups == stored > 3000  # (a few random times repeat: deduplicated)


def test_the_migration_moves_existing_rows(fresh_database: object) -> None:
    url = fresh_database()  # type: ignore[operator]
    run_async(MIGRATIONS.upgrade(url, "0002"))
    run_async(
        execute(
            url,
            """
            INSERT INTO ingest.telemetry
                (home, device, metric, ts, device_ts, value, is_bool, received_at)
            SELECT 'home', 'a', 't', now() - n * interval '7 hours', true, n, false, now()
            FROM generate_series(0, 999) AS n
            """,
        )
    )
    run_async(MIGRATIONS.upgrade(url))
    assert run_async(fetchval(url, "SELECT count(*) FROM ingest.telemetry")) == 1000
    in_default = run_async(fetchval(url, "SELECT count(*) FROM ingest_part.telemetry_default"))
    assert in_default == 0
    assert run_async(fetchval(url, "SELECT sum(count) FROM ingest.rollup_hour")) == 1000
    assert run_async(MIGRATIONS.diff(url)) == []
