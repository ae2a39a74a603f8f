"""Rejected telemetry: the reasons, the row kept for each, and the rate limit on keeping them.

Every rejected payload is acknowledged (a bad payload redelivered forever would block
the queue) and counted by reason in ``hearth_ingest_rejected_total{reason}``; only the
rate-limited share is kept in the ``reject`` table, so a device stuck sending garbage
cannot fill the database (:class:`RejectLimiter`).

Reasons are :class:`hearth.common.telemetry.RejectReason` plus ingest's own
``invalid_topic`` (a topic under ``hearth/+/+/telemetry/#`` outside the grammar, e.g.
an upper-case metric or an extra level).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from hearth.common.telemetry import RejectReason
from hearth.ingest.repository import RejectRow

__all__ = ["INVALID_TOPIC", "REASONS", "RejectLimiter", "reject_row"]

INVALID_TOPIC = "invalid_topic"
"""Ingest's reason for a telemetry delivery whose topic is outside the grammar."""
REASONS: tuple[str, ...] = (*(reason.value for reason in RejectReason), INVALID_TOPIC)
"""Every reason label ``hearth_ingest_rejected_total`` can carry."""

_MAX_DETAIL = 300


def reject_row(
    *,
    topic: str,
    payload: bytes,
    reason: str,
    detail: str,
    received_at: datetime,
    keep_bytes: int,
) -> RejectRow:
    """The row kept for a reject: the first ``keep_bytes`` of the payload and its size."""
    return RejectRow(
        received_at=received_at,
        topic=topic,
        reason=reason,
        detail=detail[:_MAX_DETAIL],
        payload=payload[:keep_bytes],
        payload_size=len(payload),
    )


class RejectLimiter:
    """A token bucket: ``rate`` rejects kept per second, up to ``burst`` at once."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        """Take a token if there is one: whether this reject may be kept."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
