"""The SQL of the history API: series (raw or bucketed), latest, export, rejects.

:class:`HistoryRepository` reads over one transaction (:class:`~hearth.common.db.Transactions`);
imports are written through :meth:`IngestRepository.write_batch` (the live path's own
deduplication). Every query is on the index ``(home, device, metric, ts)`` or, for rejects,
``(home, received_at)``:

- raw series: a range scan, ``LIMIT`` one past the page so truncation is known;
- buckets from the rollups (``rollup_minute``, ``rollup_hour``) when the service chose
  them, else from raw rows;
- buckets: ``date_bin`` on a fixed origin for minute and hour buckets, ``date_trunc('day',
  ts, zone)`` for day buckets (aligned to the home's time zone, daylight saving included);
- latest: a skip scan over the 1-hour rollups' key (a recursive CTE hops from one
  ``(device, metric)`` to the next; the small unpartitioned table, plus the pairs still
  marked for the rollup job), then the newest raw row of each: an index probe per
  partition per metric instead of a scan of the home's rows;
- export: a server-side cursor read in partitions, so memory stays bounded whatever the
  range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import text

from hearth.common.db import Repository
from hearth.ingest.models import Aggregate

__all__ = ["HistoryRepository", "LatestRow", "RejectRecord", "StoredReading"]

_AGGREGATES: Final[dict[Aggregate, str]] = {
    Aggregate.AVG: "avg(value)",
    Aggregate.MIN: "min(value)",
    Aggregate.MAX: "max(value)",
    Aggregate.SUM: "sum(value)",
    Aggregate.COUNT: "count(*)::double precision",
    Aggregate.LAST: "(array_agg(value ORDER BY ts DESC))[1]",
}
"""The SQL of each aggregate (a closed list: nothing from the request reaches the SQL)."""

_BUCKET_ORIGIN: Final = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

_RAW = text(
    """
    SELECT ts, value, is_bool FROM ingest.telemetry
    WHERE home = :home AND device = :device AND metric = :metric
      AND ts >= :start AND ts < :end
    ORDER BY ts, id
    LIMIT :limit
    """
)

_LATEST = text(
    """
    WITH RECURSIVE pairs AS (
        (SELECT device, metric FROM ingest.rollup_hour
         WHERE home = :home ORDER BY device, metric LIMIT 1)
        UNION ALL
        SELECT next.device, next.metric FROM pairs CROSS JOIN LATERAL (
            SELECT device, metric FROM ingest.rollup_hour
            WHERE home = :home AND (device, metric) > (pairs.device, pairs.metric)
            ORDER BY device, metric LIMIT 1
        ) AS next
    ),
    known AS (
        SELECT device, metric FROM pairs
        UNION SELECT device, metric FROM ingest.rollup_dirty WHERE home = :home
    )
    SELECT p.device, p.metric, newest.ts, newest.value, newest.is_bool
    FROM (SELECT device, metric FROM known ORDER BY device, metric LIMIT :limit) AS p
    CROSS JOIN LATERAL (
        SELECT ts, value, is_bool FROM ingest.telemetry
        WHERE home = :home AND device = p.device AND metric = p.metric
        ORDER BY ts DESC LIMIT 1
    ) AS newest
    ORDER BY p.device, p.metric
    """
)

_REJECTS = text(
    """
    SELECT received_at, topic, device, reason, detail, payload, payload_size
    FROM ingest.reject
    WHERE home = :home AND received_at >= :since
      AND (CAST(:device AS text) IS NULL OR device = :device)
    ORDER BY received_at DESC, id DESC
    LIMIT :limit
    """
)


@dataclass(frozen=True, slots=True)
class StoredReading:
    """One stored reading as the history API reads it."""

    ts: datetime
    value: float
    is_bool: bool


@dataclass(frozen=True, slots=True)
class BucketRow:
    """One bucket: its start, the aggregate, how many readings it holds."""

    ts: datetime
    value: float
    count: int


@dataclass(frozen=True, slots=True)
class LatestRow:
    """The newest reading of one metric of one device."""

    device: str
    metric: str
    ts: datetime
    value: float
    is_bool: bool


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One exported reading."""

    device: str
    metric: str
    ts: datetime
    value: float
    is_bool: bool


@dataclass(frozen=True, slots=True)
class RejectRecord:
    """One kept reject of a home."""

    received_at: datetime
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes
    payload_size: int


def _bucket_sql(agg: Aggregate, *, day_zone: bool) -> str:
    start = "date_trunc('day', ts, :zone)" if day_zone else f"date_bin(:step, ts, {_BUCKET_ORIGIN})"
    return f"""
        SELECT {start} AS bucket, {_AGGREGATES[agg]} AS value, count(*) AS n
        FROM ingest.telemetry
        WHERE home = :home AND device = :device AND metric = :metric
          AND ts >= :start AND ts < :end
        GROUP BY bucket ORDER BY bucket
    """  # noqa: S608 (both pieces come from closed lists above, never from the request)


_ROLLUP_AGGREGATES: Final[dict[Aggregate, str]] = {
    Aggregate.AVG: "sum(sum) / sum(count)",
    Aggregate.MIN: "min(min)",
    Aggregate.MAX: "max(max)",
    Aggregate.SUM: "sum(sum)",
    Aggregate.COUNT: "sum(count)::double precision",
    Aggregate.LAST: "(array_agg(last ORDER BY last_ts DESC))[1]",
}
"""Each aggregate over rollup rows (count, min, max, sum, last at last_ts)."""

_SERIES = "home = :home AND device = :device AND metric = :metric"
_PENDING_MINUTES = f"""
    pending AS (
        SELECT minute FROM ingest.rollup_dirty
        WHERE {_SERIES} AND minute >= :start AND minute < :end
    ),
    pending_raw AS (
        SELECT p.minute AS bucket, a.count, a.min, a.max, a.sum, a.last, a.last_ts
        FROM pending AS p CROSS JOIN LATERAL (
            SELECT count(*) AS count, min(value) AS min, max(value) AS max, sum(value) AS sum,
                   (array_agg(value ORDER BY ts DESC, id DESC))[1] AS last, max(ts) AS last_ts
            FROM ingest.telemetry
            WHERE {_SERIES} AND ts >= p.minute AND ts < p.minute + interval '1 minute'
        ) AS a
        WHERE a.count > 0
    )"""  # noqa: S608 (constants only)
_ROLLUP_COLUMNS = "bucket, count, min, max, sum, last, last_ts"
_MINUTE_PARTS = f"""
    parts AS (
        SELECT {_ROLLUP_COLUMNS} FROM ingest.rollup_minute
        WHERE {_SERIES} AND bucket >= :start AND bucket < :end
          AND bucket NOT IN (SELECT minute FROM pending)
        UNION ALL SELECT {_ROLLUP_COLUMNS} FROM pending_raw
    )"""  # noqa: S608
_HOUR_PARTS = f"""
    stale AS (SELECT DISTINCT date_trunc('hour', minute) AS hour FROM pending),
    parts AS (
        SELECT {_ROLLUP_COLUMNS} FROM ingest.rollup_hour
        WHERE {_SERIES} AND bucket >= :start AND bucket < :end
          AND bucket NOT IN (SELECT hour FROM stale)
        UNION ALL SELECT m.bucket, m.count, m.min, m.max, m.sum, m.last, m.last_ts
        FROM stale AS s CROSS JOIN LATERAL (
            SELECT {_ROLLUP_COLUMNS} FROM ingest.rollup_minute
            WHERE {_SERIES} AND bucket >= s.hour AND bucket < s.hour + interval '1 hour'
              AND bucket NOT IN (SELECT minute FROM pending)
        ) AS m
        UNION ALL SELECT {_ROLLUP_COLUMNS} FROM pending_raw
    )"""  # noqa: S608


def _rollup_bucket_sql(agg: Aggregate, source: str, *, day_zone: bool) -> str:
    """Buckets from the rollups of ``source`` (``minute`` or ``hour``): rollup rows, except
    minutes marked for the rollup job (and, for hours, the hours holding them), which are
    read from their minute rollups and raw rows: the answer is what raw rows give now."""
    start = (
        "date_trunc('day', bucket, :zone)"
        if day_zone
        else f"date_bin(:step, bucket, {_BUCKET_ORIGIN})"
    )
    parts = _HOUR_PARTS if source == "hour" else _MINUTE_PARTS
    return f"""
        WITH {_PENDING_MINUTES}, {parts}
        SELECT {start} AS b, {_ROLLUP_AGGREGATES[agg]} AS value, sum(count) AS n
        FROM parts GROUP BY b ORDER BY b
    """  # noqa: S608 (every piece comes from the closed lists above)


class HistoryRepository(Repository):
    """The history API's queries over one transaction (see the module docstring)."""

    async def raw(
        self, home: str, device: str, metric: str, start: datetime, end: datetime, limit: int
    ) -> list[StoredReading]:
        """Up to ``limit`` readings from ``start`` (inclusive) to ``end``, oldest first."""
        rows = await (await self.session.connection()).execute(
            _RAW,
            {
                "home": home,
                "device": device,
                "metric": metric,
                "start": start,
                "end": end,
                "limit": limit,
            },
        )
        return [StoredReading(ts, value, is_bool) for ts, value, is_bool in rows]

    async def buckets(
        self,
        home: str,
        device: str,
        metric: str,
        start: datetime,
        end: datetime,
        agg: Aggregate,
        *,
        step: timedelta | None = None,
        zone: str | None = None,
        source: str = "raw",
    ) -> list[BucketRow]:
        """Buckets of ``step`` (or days in ``zone``) holding readings, oldest first, from
        raw rows (``source`` ``raw``) or the ``minute`` or ``hour`` rollups."""
        params: dict[str, object] = {
            "home": home,
            "device": device,
            "metric": metric,
            "start": start,
            "end": end,
        }
        if zone is not None:
            params["zone"] = zone
        else:
            params["step"] = step
        sql = (
            _bucket_sql(agg, day_zone=zone is not None)
            if source == "raw"
            else _rollup_bucket_sql(agg, source, day_zone=zone is not None)
        )
        rows = await (await self.session.connection()).execute(text(sql), params)
        return [BucketRow(ts, value, n) for ts, value, n in rows]

    async def latest(self, home: str, limit: int) -> list[LatestRow]:
        """The newest reading of each (device, metric) of ``home`` (at most ``limit``)."""
        rows = await (await self.session.connection()).execute(
            _LATEST, {"home": home, "limit": limit}
        )
        return [LatestRow(*row) for row in rows]

    async def export(
        self,
        home: str,
        start: datetime,
        end: datetime,
        device: str | None,
        metric: str | None,
        partition: int = 5000,
    ) -> AsyncIterator[Sequence[ExportRow]]:
        """Every reading of ``home`` in the range (by device, metric, time), in partitions.

        A server-side cursor: at most ``partition`` rows are in memory at once.
        """
        conditions = ["home = :home", "ts >= :start", "ts < :end"]
        params: dict[str, object] = {"home": home, "start": start, "end": end}
        if device is not None:
            conditions.append("device = :device")
            params["device"] = device
        if metric is not None:
            conditions.append("metric = :metric")
            params["metric"] = metric
        statement = text(
            "SELECT device, metric, ts, value, is_bool FROM ingest.telemetry WHERE "  # noqa: S608
            + " AND ".join(conditions)
            + " ORDER BY device, metric, ts, id"
        )
        conn = await self.session.connection()
        result = await conn.stream(statement, params, execution_options={"yield_per": partition})
        async for rows in result.partitions(partition):
            yield [ExportRow(*row) for row in rows]

    async def rejects(
        self, home: str, device: str | None, since: datetime, limit: int
    ) -> list[RejectRecord]:
        """The newest kept rejects of ``home`` (of ``device`` if given) since ``since``."""
        rows = await (await self.session.connection()).execute(
            _REJECTS, {"home": home, "device": device, "since": since, "limit": limit}
        )
        return [RejectRecord(*row) for row in rows]
