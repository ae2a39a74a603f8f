"""Ingest's tables, in schema ``ingest``: telemetry rows, remembered message ids, rejects.

- :class:`TelemetryRow`: one stored reading. ``ts`` is the device's time when it sent
  one (``device_ts`` true), else the time ingest received the message. Only rows with
  a device time are unique on ``(home, device, metric, ts)`` (a partial unique index):
  a bare number has no identity, so two bare numbers received in the same millisecond
  are both kept, and a redelivered one is stored again (design.md: at least once).
- :class:`SeenMessageId`: ``(home, device, msg_id)`` of messages that came with an
  ``id`` but no ``ts``, kept :attr:`IngestSettings.seen_ids_ttl` (24 h) for dedup.
- :class:`Reject`: a refused payload (truncated) with its topic and reason.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, PrimaryKeyConstraint, text
from sqlmodel import Field, SQLModel

from hearth.common.db import service_registry, timestamp_column

__all__ = ["SCHEMA", "IngestModel", "Reject", "SeenMessageId", "TelemetryRow"]

SCHEMA = "ingest"


class IngestModel(SQLModel, registry=service_registry(SCHEMA)):
    """Base of every ingest table model: tables land in schema ``ingest``."""


class TelemetryRow(IngestModel, table=True):
    """One stored telemetry reading (booleans as 1.0/0.0 with ``is_bool``)."""

    __tablename__ = "telemetry"
    __table_args__ = (
        Index(
            "uq_telemetry_device_ts",
            "home",
            "device",
            "metric",
            "ts",
            unique=True,
            postgresql_where=text("device_ts"),
        ),
        Index("ix_telemetry_home_device_metric_ts", "home", "device", "metric", "ts"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    home: str = Field(max_length=63)
    device: str = Field(max_length=63)
    metric: str = Field(max_length=63)
    ts: datetime = Field(sa_column=timestamp_column())
    device_ts: bool
    value: float
    is_bool: bool = False
    msg_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(sa_column=timestamp_column())


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
    __table_args__ = (Index("ix_reject_received_at", "received_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    received_at: datetime = Field(sa_column=timestamp_column())
    topic: str
    reason: str = Field(max_length=32)
    detail: str
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_size: int
