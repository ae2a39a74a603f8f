"""The batch writer: classify a batch, commit it, then acknowledge it, in receive order.

One task runs :meth:`BatchWriter.run`: take the next batch from the inbox (up to
``batch_max_rows`` deliveries or ``batch_max_delay`` after the first), then

0. hold the batch (unacknowledged) until the device catalogue is ready: the registry's
   retained snapshots of this connection have arrived (:mod:`hearth.ingest.catalogue`);
   every ``barrier_wait`` seconds without it, the barrier is sent again and a warning
   logged;
1. classify each delivery (:meth:`IngestService.classify`): retained -> skipped; topic
   outside the grammar, payload refused, or reading refused by the device's capabilities
   -> reject (counted, kept if the rate limit allows); else a reading;
2. write readings and kept rejects in one transaction (:meth:`IngestService.store`); on a
   database error nothing is acknowledged and the same batch is retried with a
   growing delay (0.1 s to 5 s) until it commits;
3. after the commit, acknowledge every delivery of the batch (readings, rejects and
   skipped alike) in the order they were received, then report the undeclared metrics
   stored to the registry as discovered.

While a batch is being written paho keeps receiving (up to Receive Maximum), so the
next batch is already filling. A crash anywhere before step 3 leaves the batch
unacknowledged: the broker redelivers it and the deduplication absorbs what was
already committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.consumer import TelemetryConsumer
from hearth.ingest.hooks import TestHolds
from hearth.ingest.metrics import IngestMetrics
from hearth.ingest.repository import WriteResult
from hearth.ingest.service import Classified, IngestService

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)

_RETRY_MIN = 0.1
_RETRY_MAX = 5.0


class BatchWriter:
    """Moves batches from the inbox into PostgreSQL and acknowledges them after commit."""

    def __init__(
        self,
        *,
        inbox: Inbox,
        consumer: TelemetryConsumer,
        catalogue: DeviceCatalogue,
        service: IngestService,
        metrics: IngestMetrics,
        holds: TestHolds,
        max_rows: int = 5000,
        max_delay: float = 0.05,
        barrier_wait: float = 10.0,
    ) -> None:
        self._inbox = inbox
        self._consumer = consumer
        self._catalogue = catalogue
        self._barrier_wait = barrier_wait
        self._service = service
        self._metrics = metrics
        self._holds = holds
        self._max_rows = max_rows
        self._max_delay = max_delay
        self.batches = 0
        """Batches committed and acknowledged so far."""
        self.stopped = False
        """Whether :meth:`run` ended on an error (a bug: nothing is stored any more)."""

    async def run(self) -> None:
        """Write batches forever (cancel to stop; an unfinished batch is redelivered)."""
        try:
            while True:
                batch = await self._inbox.next_batch(self._max_rows, self._max_delay)
                await self.process(batch)
        except Exception:
            # Database errors are retried in _commit: this is a bug. /readyz reports it.
            log.exception("the batch writer stopped; nothing is stored or acknowledged")
            self.stopped = True
            raise

    async def process(self, batch: Sequence[Delivery]) -> WriteResult:
        """Classify, commit (retrying until it succeeds), then acknowledge one batch."""
        metrics = self._metrics
        metrics.received.inc(len(batch))
        metrics.batch_rows.observe(len(batch))
        while not await self._catalogue.wait_ready(self._barrier_wait):
            log.warning(
                "holding %d deliveries: the registry's device snapshots have not all arrived",
                len(batch),
            )
            if self._consumer.subscribed:
                self._consumer.send_barrier()
        sorted_out = self._service.classify(batch)
        result = await self._commit(sorted_out, len(batch))
        await self._holds.hold("before-ack", len(batch))
        stale = sum(1 for delivery in batch if not self._consumer.ack(delivery))
        metrics.stored.inc(result.stored)
        metrics.duplicates.inc(result.duplicates)
        metrics.retained_skipped.inc(sorted_out.retained)
        for reason in sorted_out.reasons:
            metrics.rejected.labels(reason).inc()
        metrics.rejects_not_kept.inc(len(sorted_out.reasons) - result.rejects)
        if stale:
            metrics.stale_acks.inc(stale)
        for home, device, metric in sorted_out.discovered:
            self._consumer.report_discovered(home, device, metric)
        metrics.discovered.inc(len(sorted_out.discovered))
        if batch:
            metrics.batch_latency.observe(time.monotonic() - batch[0].received_mono)
        self.batches += 1
        return result

    async def _commit(self, sorted_out: Classified, size: int) -> WriteResult:
        delay = _RETRY_MIN
        while True:
            started = time.perf_counter()
            try:
                result = await self._service.store(sorted_out, size)
            except Exception as exc:
                # Nothing was acknowledged: retrying the whole batch is always safe.
                self._metrics.write_errors.inc()
                log.error(
                    "batch of %d not written (%s); retrying in %.1f s",
                    size,
                    type(exc).__name__,
                    delay,
                    exc_info=not isinstance(exc, OSError),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            self._metrics.batch_seconds.observe(time.perf_counter() - started)
            return result
