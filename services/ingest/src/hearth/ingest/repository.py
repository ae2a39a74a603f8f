"""The SQL of ingest: write one batch (COPY to staging, then deduplicating inserts), purge ids.

:class:`IngestRepository` works over one transaction (:class:`~hearth.common.db.Transactions`)
and the service commits, so rows, remembered ids and rejects commit or roll back together:

1. ``COPY`` every accepted reading into ``ingest_staging``, a temporary table of the
   connection (created once per connection, emptied at every commit);
2. readings with a device ``ts``: ``INSERT ... SELECT ... ON CONFLICT (home, device,
   metric, ts) WHERE device_ts DO NOTHING`` against the partial unique index;
3. readings with an ``id`` but no ``ts``: the id is inserted into ``seen_msg_id``
   (``ON CONFLICT DO NOTHING ... RETURNING``) and only the readings whose id was new
   are inserted; ``DISTINCT ON`` keeps the first copy when one batch holds two;
4. bare readings (neither ``ts`` nor ``id``): inserted as they are, ``ts`` = received time;
5. rejects are COPied into ``reject``.

Duplicates absorbed = readings staged - rows inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, Table, Text, text

from hearth.common.db import Repository, copy_records
from hearth.ingest.models import Reject

__all__ = ["IngestRepository", "ReadingRow", "RejectRow", "WriteResult"]


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """An accepted reading ready to store; ``ts`` is ``None`` when the device sent none."""

    home: str
    device: str
    metric: str
    value: float
    is_bool: bool
    ts: datetime | None
    msg_id: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RejectRow:
    """A refused payload as kept in the ``reject`` table (``payload`` already truncated)."""

    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload: bytes
    payload_size: int
    home: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did: rows stored, duplicates absorbed, rejects kept."""

    stored: int
    duplicates: int
    rejects: int


STAGING = Table(
    "ingest_staging",
    MetaData(),
    Column("seq", Integer, nullable=False),
    Column("home", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("device_ts", Boolean, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_bool", Boolean, nullable=False),
    Column("msg_id", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
"""The per-connection temporary table a batch is COPied into (no schema: ``pg_temp``)."""

_CREATE_STAGING = text(
    """
    CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (
        seq integer NOT NULL,
        home text NOT NULL,
        device text NOT NULL,
        metric text NOT NULL,
        ts timestamptz NOT NULL,
        device_ts boolean NOT NULL,
        value double precision NOT NULL,
        is_bool boolean NOT NULL,
        msg_id text,
        received_at timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS
    """
)

_INSERT_WITH_TS = text(
    """
    INSERT INTO ingest.telemetry
        (home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at)
    SELECT home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at
    FROM ingest_staging WHERE device_ts ORDER BY seq
    ON CONFLICT (home, device, metric, ts) WHERE device_ts DO NOTHING
    """
)
_INSERT_WITH_ID = text(
    """
    WITH fresh AS (
        INSERT INTO ingest.seen_msg_id (home, device, msg_id, seen_at)
        SELECT DISTINCT ON (home, device, msg_id) home, device, msg_id, received_at
        FROM ingest_staging
        WHERE NOT device_ts AND msg_id IS NOT NULL
        ORDER BY home, device, msg_id, seq
        ON CONFLICT DO NOTHING
        RETURNING home, device, msg_id
    )
    INSERT INTO ingest.telemetry
        (home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at)
    SELECT DISTINCT ON (s.home, s.device, s.msg_id)
        s.home, s.device, s.metric, s.ts, s.device_ts, s.value, s.is_bool, s.msg_id,
        s.received_at
    FROM ingest_staging AS s JOIN fresh USING (home, device, msg_id)
    WHERE NOT s.device_ts
    ORDER BY s.home, s.device, s.msg_id, s.seq
    """
)
_INSERT_BARE = text(
    """
    INSERT INTO ingest.telemetry
        (home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at)
    SELECT home, device, metric, ts, device_ts, value, is_bool, msg_id, received_at
    FROM ingest_staging
    WHERE NOT device_ts AND msg_id IS NULL ORDER BY seq
    """
)
_PURGE_SEEN = text(
    "DELETE FROM ingest.seen_msg_id WHERE seen_at < now() - make_interval(secs => :ttl)"
)
_REJECT_COLUMNS = (
    "received_at",
    "topic",
    "reason",
    "detail",
    "payload",
    "payload_size",
    "home",
    "device",
)


def _staging_record(seq: int, row: ReadingRow) -> tuple[object, ...]:
    ts = row.ts if row.ts is not None else row.received_at
    return (
        seq,
        row.home,
        row.device,
        row.metric,
        ts,
        row.ts is not None,
        row.value,
        row.is_bool,
        row.msg_id,
        row.received_at,
    )


class IngestRepository(Repository):
    """Ingest's queries over one transaction (:class:`~hearth.common.db.Repository`)."""

    async def write_batch(
        self, readings: Sequence[ReadingRow], rejects: Sequence[RejectRow] = ()
    ) -> WriteResult:
        """Store ``readings`` (deduplicated, see the module docstring) and ``rejects``.

        Runs in this repository's transaction; the caller commits.
        """
        conn = await self.session.connection()
        stored = 0
        if readings:
            await conn.execute(_CREATE_STAGING)
            await copy_records(
                conn, STAGING, (_staging_record(i, row) for i, row in enumerate(readings))
            )
            with_ts = sum(1 for row in readings if row.ts is not None)
            with_id = sum(1 for row in readings if row.ts is None and row.msg_id is not None)
            bare = len(readings) - with_ts - with_id
            for statement, count in ((_INSERT_WITH_TS, with_ts), (_INSERT_WITH_ID, with_id)):
                if count:
                    stored += (await conn.execute(statement)).rowcount
            if bare:
                stored += (await conn.execute(_INSERT_BARE)).rowcount
        if rejects:
            await copy_records(
                conn,
                Reject.__table__,  # type: ignore[attr-defined]
                (
                    (
                        r.received_at,
                        r.topic,
                        r.reason,
                        r.detail,
                        r.payload,
                        r.payload_size,
                        r.home,
                        r.device,
                    )
                    for r in rejects
                ),
                columns=_REJECT_COLUMNS,
            )
        return WriteResult(stored=stored, duplicates=len(readings) - stored, rejects=len(rejects))

    async def purge_seen_ids(self, ttl_seconds: float) -> int:
        """Forget message ids seen more than ``ttl_seconds`` ago; how many were deleted."""
        conn = await self.session.connection()
        result = await conn.execute(_PURGE_SEEN, {"ttl": ttl_seconds})
        return result.rowcount
