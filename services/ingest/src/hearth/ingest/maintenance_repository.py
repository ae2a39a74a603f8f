"""The SQL of the storage jobs: partitions, rollups, retention deletes, retention settings.

:class:`MaintenanceRepository` works over one transaction; every job step starts with
:meth:`try_lock` (a transaction-scoped advisory lock) so that with several ingest replicas
one replica does a step at a time and the others skip it.

- **Partitions** (``telemetry`` by ``ts``, ``rollup_minute`` by ``bucket``): one per UTC
  month, in schema ``ingest_part``, named ``<table>_pYYYY_MM``, plus ``<table>_default``
  for rows no month partition takes (a reading older than the oldest partition, or a year
  ahead). :meth:`attach_month` makes a month's partition, first moving the default
  partition's rows of that month into it (PostgreSQL refuses the partition otherwise).
- **Rollups**: :meth:`roll_up` takes up to ``limit`` marks from ``rollup_dirty`` in key
  order (the primary key's index: the deleted marks of earlier batches are skipped there,
  not rescanned as a plain scan would; ``FOR UPDATE SKIP LOCKED``, deleted), then in
  later statements of the same transaction (new
  snapshots: every writer that marked those minutes has committed, a writer marking them
  now waits for this transaction) recomputes those minutes from raw rows and their hours
  from the minutes. A minute with no raw rows left (dropped by retention) keeps its rollup.
- **Retention**: :meth:`delete_expired` deletes at most ``limit`` rows of one scope older
  than a time (by primary key, so each statement is bounded).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import text

from hearth.common.db import Repository

__all__ = ["PARTITION_SCHEMA", "MaintenanceRepository", "Partitioned", "RetentionEntry"]

PARTITION_SCHEMA: Final = "ingest_part"


@dataclass(frozen=True, slots=True)
class Partitioned:
    """A table partitioned by month on ``column``."""

    table: str
    column: str

    def partition(self, month: datetime) -> str:
        """The name of ``month``'s partition (``month``: the first instant of a UTC month)."""
        return f"{self.table}_p{month:%Y_%m}"

    @property
    def default(self) -> str:
        """The default partition's name."""
        return f"{self.table}_default"


@dataclass(frozen=True, slots=True)
class RetentionEntry:
    """A retention setting: ``device`` / ``metric`` empty means every one."""

    home: str
    device: str
    metric: str
    days: int


_LIST_PARTITIONS = text(
    """
    SELECT c.relname FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.inhparent = CAST(:parent AS regclass) AND n.nspname = 'ingest_part'
    ORDER BY c.relname
    """
)

_TAKE_DIRTY = text(
    """
    DELETE FROM ingest.rollup_dirty AS d USING (
        SELECT home, device, metric, minute FROM ingest.rollup_dirty
        ORDER BY home, device, metric, minute
        LIMIT :limit FOR UPDATE SKIP LOCKED
    ) AS p
    WHERE (d.home, d.device, d.metric, d.minute) = (p.home, p.device, p.metric, p.minute)
    RETURNING d.home, d.device, d.metric, d.minute
    """
)


_MINUTES_FROM_RAW = text(
    """
    INSERT INTO ingest.rollup_minute
        (home, device, metric, bucket, count, min, max, sum, last, last_ts)
    SELECT p.home, p.device, p.metric, p.minute, a.count, a.min, a.max, a.sum, a.last, a.last_ts
    FROM unnest(CAST(:homes AS text[]), CAST(:devices AS text[]), CAST(:metrics AS text[]),
                CAST(:minutes AS timestamptz[])) AS p(home, device, metric, minute)
    CROSS JOIN LATERAL (
        SELECT count(*) AS count, min(value) AS min, max(value) AS max, sum(value) AS sum,
               (array_agg(value ORDER BY ts DESC, id DESC))[1] AS last, max(ts) AS last_ts
        FROM ingest.telemetry AS t
        WHERE t.home = p.home AND t.device = p.device AND t.metric = p.metric
          AND t.ts >= p.minute AND t.ts < p.minute + interval '1 minute'
    ) AS a
    WHERE a.count > 0
    ON CONFLICT (home, device, metric, bucket) DO UPDATE SET
        count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum,
        last = EXCLUDED.last, last_ts = EXCLUDED.last_ts
"""
)

_HOURS_FROM_MINUTES = text(
    """
    INSERT INTO ingest.rollup_hour
        (home, device, metric, bucket, count, min, max, sum, last, last_ts)
    SELECT h.home, h.device, h.metric, h.hour, a.count, a.min, a.max, a.sum, a.last, a.last_ts
    FROM unnest(CAST(:homes AS text[]), CAST(:devices AS text[]), CAST(:metrics AS text[]),
                CAST(:hours AS timestamptz[])) AS h(home, device, metric, hour)
    CROSS JOIN LATERAL (
        SELECT sum(m.count) AS count, min(m.min) AS min, max(m.max) AS max, sum(m.sum) AS sum,
               (array_agg(m.last ORDER BY m.last_ts DESC))[1] AS last, max(m.last_ts) AS last_ts
        FROM ingest.rollup_minute AS m
        WHERE m.home = h.home AND m.device = h.device AND m.metric = h.metric
          AND m.bucket >= h.hour AND m.bucket < h.hour + interval '1 hour'
    ) AS a
    WHERE a.count IS NOT NULL
    ON CONFLICT (home, device, metric, bucket) DO UPDATE SET
        count = EXCLUDED.count, min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum,
        last = EXCLUDED.last, last_ts = EXCLUDED.last_ts
"""
)

_DELETE_EXPIRED = text(
    """
    DELETE FROM ingest.telemetry AS t USING (
        SELECT home, device, metric, ts, id FROM ingest.telemetry
        WHERE home = :home AND (:device = '' OR device = :device)
          AND (:metric = '' OR metric = :metric) AND ts < :before
        LIMIT :limit
    ) AS old
    WHERE (t.home, t.device, t.metric, t.ts, t.id)
        = (old.home, old.device, old.metric, old.ts, old.id)
      AND t.ts < :before
    """
)

_DELETE_UNSET_HOMES = text(
    """
    DELETE FROM ingest.telemetry AS t USING (
        SELECT home, device, metric, ts, id FROM ingest.telemetry
        WHERE ts < :before AND home NOT IN (
            SELECT home FROM ingest.retention WHERE device = '' AND metric = '')
        LIMIT :limit
    ) AS old
    WHERE (t.home, t.device, t.metric, t.ts, t.id)
        = (old.home, old.device, old.metric, old.ts, old.id)
      AND t.ts < :before
    """
)

_DELETE_OLD_HOURS = text(
    """
    DELETE FROM ingest.rollup_hour AS r USING (
        SELECT home, device, metric, bucket FROM ingest.rollup_hour
        WHERE bucket < :before LIMIT :limit
    ) AS old
    WHERE (r.home, r.device, r.metric, r.bucket) = (old.home, old.device, old.metric, old.bucket)
    """
)

_RETENTION_OF = text(
    """
    SELECT home, device, metric, days FROM ingest.retention
    WHERE home = :home ORDER BY device, metric
    """
)
_ALL_RETENTION = text("SELECT home, device, metric, days FROM ingest.retention")
_SET_RETENTION = text(
    """
    INSERT INTO ingest.retention (home, device, metric, days)
    VALUES (:home, :device, :metric, :days)
    ON CONFLICT (home, device, metric) DO UPDATE SET days = EXCLUDED.days, updated_at = now()
    """
)
_CLEAR_RETENTION = text(
    "DELETE FROM ingest.retention WHERE home = :home AND device = :device AND metric = :metric"
)


class MaintenanceRepository(Repository):
    """The storage jobs' statements (see the module docstring)."""

    async def try_lock(self, key: int) -> bool:
        """Take the transaction-scoped advisory lock ``key`` if free (released at the end)."""
        conn = await self.session.connection()
        result = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
        return bool(result.scalar_one())

    # ------------------------------------------------------------------ partitions

    async def partitions(self, table: Partitioned) -> list[str]:
        """The names of ``table``'s partitions (month ones and the default)."""
        conn = await self.session.connection()
        rows = await conn.execute(_LIST_PARTITIONS, {"parent": f"ingest.{table.table}"})
        return [name for (name,) in rows]

    async def default_months(self, table: Partitioned) -> list[datetime]:
        """The UTC months that rows of the default partition fall in."""
        conn = await self.session.connection()
        rows = await conn.execute(
            text(
                f"SELECT DISTINCT date_trunc('month', {table.column}, 'UTC') "  # noqa: S608
                f"FROM {PARTITION_SCHEMA}.{table.default} ORDER BY 1"
            )
        )
        return [month for (month,) in rows]

    async def attach_month(self, table: Partitioned, month: datetime, end: datetime) -> int:
        """Make ``month``'s partition (up to ``end``), moving the default partition's rows of
        that month into it; how many rows were moved."""
        conn = await self.session.connection()
        name = table.partition(month)
        column = table.column
        where = f"{column} >= :start AND {column} < :end"
        bounds = {"start": month, "end": end}
        await conn.execute(
            text(f"CREATE TEMPORARY TABLE moving (LIKE ingest.{table.table}) ON COMMIT DROP")
        )
        await conn.execute(
            text(
                f"WITH d AS (DELETE FROM {PARTITION_SCHEMA}.{table.default} "  # noqa: S608
                f"WHERE {where} RETURNING *) INSERT INTO moving SELECT * FROM d"
            ),
            bounds,
        )
        start_literal = month.isoformat()
        end_literal = end.isoformat()
        await conn.execute(
            text(
                f"CREATE TABLE {PARTITION_SCHEMA}.{name} PARTITION OF ingest.{table.table} "
                f"FOR VALUES FROM ('{start_literal}') TO ('{end_literal}')"
            )
        )
        moved = await conn.execute(
            text(f"INSERT INTO ingest.{table.table} SELECT * FROM moving")  # noqa: S608
        )
        await conn.execute(text("DROP TABLE moving"))
        return int(moved.rowcount)

    async def delete_from_default(self, table: Partitioned, before: datetime) -> int:
        """Delete the default partition's rows older than ``before`` (past retention)."""
        conn = await self.session.connection()
        result = await conn.execute(
            text(
                f"DELETE FROM {PARTITION_SCHEMA}.{table.default} "  # noqa: S608
                f"WHERE {table.column} < :before"
            ),
            {"before": before},
        )
        return int(result.rowcount)

    async def drop_partition(self, name: str) -> None:
        """Drop one partition (a name from :meth:`partitions`): its rows go at once."""
        conn = await self.session.connection()
        await conn.execute(text(f'DROP TABLE {PARTITION_SCHEMA}."{name}"'))

    # ------------------------------------------------------------------ rollups

    async def roll_up(self, limit: int) -> int:
        """Roll up to ``limit`` marked minutes and their hours; how many minutes."""
        conn = await self.session.connection()
        # Many small index probes: compiling them (JIT) costs more than it saves.
        await conn.execute(text("SET LOCAL jit = off"))
        marks = (await conn.execute(_TAKE_DIRTY, {"limit": limit})).all()
        if not marks:
            return 0
        homes = [m.home for m in marks]
        devices = [m.device for m in marks]
        metrics = [m.metric for m in marks]
        minutes = [m.minute for m in marks]
        await conn.execute(
            _MINUTES_FROM_RAW,
            {"homes": homes, "devices": devices, "metrics": metrics, "minutes": minutes},
        )
        hours = sorted(
            {(m.home, m.device, m.metric, m.minute.replace(minute=0, second=0)) for m in marks}
        )
        await conn.execute(
            _HOURS_FROM_MINUTES,
            {
                "homes": [h[0] for h in hours],
                "devices": [h[1] for h in hours],
                "metrics": [h[2] for h in hours],
                "hours": [h[3] for h in hours],
            },
        )
        return len(marks)

    async def pending_rollups(self) -> int:
        """How many (series, minute) marks wait for the rollup job."""
        conn = await self.session.connection()
        return int(
            (await conn.execute(text("SELECT count(*) FROM ingest.rollup_dirty"))).scalar_one()
        )

    async def delete_old_hours(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` hour rollups older than ``before``."""
        conn = await self.session.connection()
        result = await conn.execute(_DELETE_OLD_HOURS, {"before": before, "limit": limit})
        return int(result.rowcount)

    # ------------------------------------------------------------------ retention

    async def delete_expired(self, entry: RetentionEntry, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` readings in ``entry``'s scope older than ``before``."""
        conn = await self.session.connection()
        result = await conn.execute(
            _DELETE_EXPIRED,
            {
                "home": entry.home,
                "device": entry.device,
                "metric": entry.metric,
                "before": before,
                "limit": limit,
            },
        )
        return int(result.rowcount)

    async def delete_expired_unset(self, before: datetime, limit: int) -> int:
        """Delete at most ``limit`` readings older than ``before`` of homes with no retention
        of their own (when the partitions are kept longer than the default)."""
        conn = await self.session.connection()
        result = await conn.execute(_DELETE_UNSET_HOMES, {"before": before, "limit": limit})
        return int(result.rowcount)

    async def all_retention(self) -> list[RetentionEntry]:
        """Every retention setting of every home."""
        conn = await self.session.connection()
        return [RetentionEntry(*row) for row in await conn.execute(_ALL_RETENTION)]

    async def retention_of(self, home: str) -> list[RetentionEntry]:
        """``home``'s retention settings."""
        conn = await self.session.connection()
        return [RetentionEntry(*row) for row in await conn.execute(_RETENTION_OF, {"home": home})]

    async def set_retention(self, entry: RetentionEntry) -> None:
        """Create or replace one retention setting."""
        conn = await self.session.connection()
        await conn.execute(
            _SET_RETENTION,
            {
                "home": entry.home,
                "device": entry.device,
                "metric": entry.metric,
                "days": entry.days,
            },
        )

    async def clear_retention(self, home: str, device: str, metric: str) -> bool:
        """Remove one retention setting; whether there was one."""
        conn = await self.session.connection()
        result = await conn.execute(
            _CLEAR_RETENTION, {"home": home, "device": device, "metric": metric}
        )
        return bool(result.rowcount)
