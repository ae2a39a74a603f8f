"""Ingest's tables, in schema ``ingest``: telemetry rows, remembered message ids, rejects.

- :class:`TelemetryRow`: one stored reading. ``ts`` is the device's time when it sent
  one (``device_ts`` true), else the time ingest received the message. Only rows with
  a device time are unique on ``(home, device, metric, ts)`` (a partial unique index):
  a bare number has no identity, so two bare numbers received in the same millisecond
  are both kept, and a redelivered one is stored again (design.md: at least once).
- :class:`SeenMessageId`: ``(home, device, msg_id)`` of messages that came with an
  ``id`` but no ``ts``, kept :attr:`IngestSettings.seen_ids_ttl` (24 h) for dedup.
- :class:`Reject`: a refused payload (truncated) with its topic and reason, and the home
  and device its topic names (``NULL`` when the topic names none).

The history API's answers: :class:`SeriesOut` (raw :class:`Point` or :class:`BucketPoint`),
:class:`LatestOut`, :class:`RejectOut`, :class:`ImportReport`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from hearth.common.db import service_registry, timestamp_column
from hearth.common.schemas import InputModel

__all__ = [
    "SCHEMA",
    "Aggregate",
    "BucketPoint",
    "ImportLineError",
    "ImportReport",
    "IngestModel",
    "LatestOut",
    "LatestValue",
    "Point",
    "Reject",
    "RejectOut",
    "Retention",
    "RetentionIn",
    "RetentionOut",
    "RetentionOverride",
    "RollupDirty",
    "RollupHour",
    "RollupMinute",
    "SeenMessageId",
    "SeriesOut",
    "TelemetryRow",
]

SCHEMA = "ingest"


class IngestModel(SQLModel, registry=service_registry(SCHEMA)):
    """Base of every ingest table model: tables land in schema ``ingest``."""


class TelemetryRow(IngestModel, table=True):
    """One stored telemetry reading (booleans as 1.0/0.0 with ``is_bool``).

    Partitioned by ``RANGE (ts)``, a partition per UTC month in schema ``ingest_part``
    (:mod:`hearth.ingest.partitions`). Every unique key holds ``ts``.
    """

    __tablename__ = "telemetry"
    __table_args__ = (
        PrimaryKeyConstraint("home", "device", "metric", "ts", "id"),
        Index(
            "uq_telemetry_device_ts",
            "home",
            "device",
            "metric",
            "ts",
            unique=True,
            postgresql_where=text("device_ts"),
        ),
        {"postgresql_partition_by": "RANGE (ts)"},
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger,
            server_default=text("nextval('ingest.telemetry_id_seq')"),
            nullable=False,
            autoincrement=False,
        ),
    )
    home: str = Field(max_length=63)
    device: str = Field(max_length=63)
    metric: str = Field(max_length=63)
    ts: datetime = Field(sa_column=timestamp_column())
    device_ts: bool
    value: float
    is_bool: bool = False
    msg_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(sa_column=timestamp_column())


class _Rollup(IngestModel):
    """The columns of a rollup: one bucket of one series (``last`` is the value at ``last_ts``)."""

    home: str = Field(max_length=63)
    device: str = Field(max_length=63)
    metric: str = Field(max_length=63)
    bucket: datetime = Field(sa_type=DateTime(timezone=True))
    count: int
    min: float
    max: float
    sum: float
    last: float
    last_ts: datetime = Field(sa_type=DateTime(timezone=True))


class RollupMinute(_Rollup, table=True):
    """A series' readings of one minute, aggregated (partitioned by month like telemetry)."""

    __tablename__ = "rollup_minute"
    __table_args__ = (
        PrimaryKeyConstraint("home", "device", "metric", "bucket"),
        {"postgresql_partition_by": "RANGE (bucket)"},
    )


class RollupHour(_Rollup, table=True):
    """A series' readings of one hour, aggregated from its minutes."""

    __tablename__ = "rollup_hour"
    __table_args__ = (PrimaryKeyConstraint("home", "device", "metric", "bucket"),)


class RollupDirty(IngestModel, table=True):
    """A (series, minute) with readings inserted since the rollup job last rolled it up."""

    __tablename__ = "rollup_dirty"
    __table_args__ = (PrimaryKeyConstraint("home", "device", "metric", "minute"),)

    home: str = Field(max_length=63)
    device: str = Field(max_length=63)
    metric: str = Field(max_length=63)
    minute: datetime = Field(sa_column=timestamp_column())


class Retention(IngestModel, table=True):
    """Days readings are kept: a home's (``device`` and ``metric`` empty), a device's, a
    metric's (of one device, or of every device when ``device`` is empty)."""

    __tablename__ = "retention"
    __table_args__ = (
        PrimaryKeyConstraint("home", "device", "metric"),
        CheckConstraint("days > 0", name="retention_days_check"),
    )

    home: str = Field(max_length=63)
    device: str = Field(default="", max_length=63, sa_column_kwargs={"server_default": ""})
    metric: str = Field(default="", max_length=63, sa_column_kwargs={"server_default": ""})
    days: int
    updated_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    )


class SeenMessageId(IngestModel, table=True):
    """A message id (``<boot>-<seq>``) already stored for a device, remembered for dedup."""

    __tablename__ = "seen_msg_id"
    __table_args__ = (
        PrimaryKeyConstraint("home", "device", "msg_id"),
        Index("ix_seen_msg_id_seen_at", "seen_at"),
    )

    home: str = Field(max_length=63)
    device: str = Field(max_length=63)
    msg_id: str = Field(max_length=64)
    seen_at: datetime = Field(sa_column=timestamp_column())


class Reject(IngestModel, table=True):
    """A telemetry payload ingest refused: topic, the first bytes, the reason."""

    __tablename__ = "reject"
    __table_args__ = (
        Index("ix_reject_received_at", "received_at"),
        Index("ix_reject_home_received_at", "home", "received_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    received_at: datetime = Field(sa_column=timestamp_column())
    home: str | None = Field(default=None, max_length=63)
    device: str | None = Field(default=None, max_length=63)
    topic: str
    reason: str = Field(max_length=32)
    detail: str
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_size: int


# --------------------------------------------------------------------------- the history API


class Aggregate(StrEnum):
    """How a bucket's readings become one value."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    LAST = "last"


class Point(BaseModel):
    """One stored reading: its time and value (booleans as ``true``/``false``)."""

    ts: datetime
    value: float | bool


class BucketPoint(BaseModel):
    """One bucket: its start (in the home's time zone for day buckets) and aggregate."""

    ts: datetime
    value: float
    count: int


class SeriesOut(BaseModel):
    """A metric's readings from ``from`` (inclusive) to ``to`` (exclusive).

    Raw (``bucket`` null): ``points`` holds up to ``limit`` readings in time order and
    ``truncated`` says more were there (ask again from the last ``ts``, or export).
    Bucketed: one entry per bucket that holds readings; ``tz`` is the zone day buckets
    are aligned to; ``source`` says what was read: ``raw`` rows, or the 1-minute or
    1-hour rollups (exact: minutes not rolled up yet are read from raw rows).
    """

    model_config = ConfigDict(populate_by_name=True)

    home: str
    device: str
    metric: str
    from_: datetime = PydanticField(alias="from")
    to: datetime
    bucket: str | None
    agg: Aggregate | None
    tz: str | None = None
    source: Literal["raw", "rollup_minute", "rollup_hour"] = "raw"
    truncated: bool = False
    points: list[Point] | list[BucketPoint]


class LatestValue(BaseModel):
    """The newest reading of one metric of one device."""

    device: str
    metric: str
    ts: datetime
    value: float | bool


class LatestOut(BaseModel):
    """The newest reading of every metric of every device of a home."""

    home: str
    values: list[LatestValue]


class RejectOut(BaseModel):
    """A refused payload: why, when, and what it was.

    ``payload`` is the kept bytes as text when they are UTF-8 (``payload_base64`` null),
    else null with the bytes in ``payload_base64``; ``payload_size`` is the full size.
    """

    received_at: datetime
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: str | None
    payload_base64: str | None
    payload_size: int
    truncated: bool


class ImportLineError(BaseModel):
    """A line an import refused: its number (the header is line 1) and why."""

    line: int
    error: str


class ImportReport(BaseModel):
    """What an import did: lines read, readings stored, readings already stored, errors.

    ``errors`` lists the first refused lines (at most ``errors_shown``);
    ``errors_total`` counts them all. Importing the same file again stores nothing.
    """

    status: Literal["done"] = "done"
    lines: int
    stored: int
    duplicates: int
    errors_total: int
    errors: list[ImportLineError]


# --------------------------------------------------------------------------- retention


class RetentionIn(InputModel):
    """Days readings are kept (at most the 1-minute rollups' days: rollups outlive raw)."""

    days: int = PydanticField(ge=1, le=36_600)


class RetentionOverride(BaseModel):
    """A shorter retention for one device, one metric (of every device: ``device`` null),
    or one metric of one device."""

    device: str | None
    metric: str | None
    days: int


class RetentionOut(BaseModel):
    """How long a home's readings and rollups are kept.

    ``days`` is the home's (``default`` true: the service's default, none set);
    an override only shortens it (the shorter of the two applies). Rollups are kept
    ``rollup_minute_days`` and ``rollup_hour_days`` whatever the raw retention.
    """

    home: str
    days: int
    default: bool
    overrides: list[RetentionOverride]
    rollup_minute_days: int
    rollup_hour_days: int
