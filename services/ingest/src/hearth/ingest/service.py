"""IngestService: ingest's business rules, knowing nothing of MQTT, HTTP or SQL.

- **classify** a batch of deliveries: a delivery flagged retained is skipped (its value
  was stored when it was live); a topic outside the grammar, a payload refused by
  :func:`hearth.common.telemetry.parse_telemetry`, or a reading the device's capabilities
  refuse (:meth:`~hearth.ingest.catalogue.DeviceCatalogue.check`: unknown device, outside
  the declared range, an undeclared metric of a device refusing them) is a reject
  (counted, kept only as the rate limit allows:
  :class:`~hearth.ingest.rejects.RejectLimiter`); the rest are readings, and undeclared
  metrics among them are noted to be reported as discovered;
- **store** what a batch sorted into, readings and kept rejects, in one transaction
  (:class:`~hearth.ingest.repository.IngestRepository`), deduplicated on the way in;
- **purge** the message ids remembered for deduplication once they are older than their
  time to live.

When to store and acknowledge, and what to do when the database fails, is the pipeline's
business (:mod:`hearth.ingest.writer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hearth.common.db import Transactions
from hearth.common.telemetry import TelemetryRejected, parse_telemetry
from hearth.common.topics import Kind, TopicError, parse_topic
from hearth.ingest.batcher import Delivery
from hearth.ingest.catalogue import DISCOVERED, DeviceCatalogue
from hearth.ingest.hooks import TestHolds
from hearth.ingest.rejects import INVALID_TOPIC, RejectLimiter, RejectLog, reject_row
from hearth.ingest.repository import IngestRepository, ReadingRow, RejectRow, WriteResult

__all__ = ["Classified", "IngestService", "classify"]


@dataclass
class Classified:
    """A batch sorted out: readings to store, rejects (with their reasons), skipped count."""

    readings: list[ReadingRow] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    retained: int = 0
    discovered: list[tuple[str, str, str]] = field(default_factory=list)
    """``(home, device, metric)`` of stored readings of undeclared metrics, to report."""


def _classify_one(
    delivery: Delivery, catalogue: DeviceCatalogue, out: Classified
) -> ReadingRow | tuple[str, str]:
    """A reading, or ``(reason, detail)`` for a reject; notes discovered metrics in ``out``."""
    try:
        topic = parse_topic(delivery.topic)
    except TopicError as exc:
        return INVALID_TOPIC, str(exc)
    if topic.kind is not Kind.TELEMETRY or topic.name is None:
        return INVALID_TOPIC, f"not a telemetry topic: {delivery.topic}"
    try:
        reading = parse_telemetry(delivery.payload, now=delivery.received_at)
    except TelemetryRejected as exc:
        return exc.reason.value, exc.detail
    verdict = catalogue.check(topic.home, topic.device, topic.name, reading.value, reading.is_bool)
    if isinstance(verdict, tuple):
        return verdict[0].value, verdict[1]
    if verdict is DISCOVERED and catalogue.should_report(topic.home, topic.device, topic.name):
        out.discovered.append((topic.home, topic.device, topic.name))
    return ReadingRow(
        home=topic.home,
        device=topic.device,
        metric=topic.name,
        value=reading.value,
        is_bool=reading.is_bool,
        ts=reading.ts,
        msg_id=reading.msg_id,
        received_at=delivery.received_at,
    )


def classify(
    batch: Sequence[Delivery],
    catalogue: DeviceCatalogue,
    limiter: RejectLimiter,
    keep_bytes: int = 256,
    reject_log: RejectLog | None = None,
) -> Classified:
    """Sort a batch into readings, rejects and skipped retained deliveries.

    Each reject is also noted in ``reject_log`` (rate-limited log lines) when given.
    """
    out = Classified()
    for delivery in batch:
        if delivery.retain:
            # A retained replay: the value was stored when it was live (design.md).
            out.retained += 1
            continue
        result = _classify_one(delivery, catalogue, out)
        if isinstance(result, ReadingRow):
            out.readings.append(result)
            continue
        reason, detail = result
        out.reasons.append(reason)
        if reject_log is not None:
            reject_log.record(delivery.topic, reason, detail)
        if limiter.allow():
            out.rejects.append(
                reject_row(
                    topic=delivery.topic,
                    payload=delivery.payload,
                    reason=reason,
                    detail=detail,
                    received_at=delivery.received_at,
                    keep_bytes=keep_bytes,
                )
            )
    return out


class IngestService:
    """Classifies batches and stores them (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[IngestRepository],
        *,
        catalogue: DeviceCatalogue,
        limiter: RejectLimiter,
        holds: TestHolds,
        keep_bytes: int = 256,
        reject_log: RejectLog | None = None,
    ) -> None:
        self._transactions = transactions
        self._catalogue = catalogue
        self._limiter = limiter
        self._holds = holds
        self._keep_bytes = keep_bytes
        self._reject_log = reject_log

    def classify(self, batch: Sequence[Delivery]) -> Classified:
        """Sort ``batch`` into readings, rejects (rate-limited) and skipped retained ones."""
        return classify(batch, self._catalogue, self._limiter, self._keep_bytes, self._reject_log)

    async def store(self, batch: Classified, size: int) -> WriteResult:
        """Write a classified batch of ``size`` deliveries in one transaction and commit it.

        Raises whatever the database raised; nothing is committed then.
        """
        async with self._transactions() as repo:
            result = await repo.write_batch(batch.readings, batch.rejects)
            await self._holds.hold("before-commit", size)
            await repo.commit()
        return result

    async def purge_seen_ids(self, ttl_seconds: float) -> int:
        """Forget message ids older than ``ttl_seconds``; how many were forgotten."""
        async with self._transactions() as repo:
            purged = await repo.purge_seen_ids(ttl_seconds)
            await repo.commit()
        return purged
