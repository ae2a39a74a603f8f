"""Rejected telemetry: the reasons, the row kept for each, and the rate limit on keeping them.

Every rejected payload is acknowledged (a bad payload redelivered forever would block
the queue) and counted by reason in ``hearth_ingest_rejected_total{reason}``; only the
rate-limited share is kept in the ``reject`` table, so a device stuck sending garbage
cannot fill the database (:class:`RejectLimiter`).

Reasons are :class:`hearth.common.telemetry.RejectReason` plus ingest's own
``invalid_topic`` (a topic under ``hearth/+/+/telemetry/#`` outside the grammar, e.g.
an upper-case metric or an extra level).

A kept reject carries the home and device its topic names (when the first levels are
slugs, even if the rest is outside the grammar), so ``GET .../rejects`` can list a
home's. Operators see rejects in the logs too: :class:`RejectLog` writes one line per
reason per device per minute (the first; the rest of that minute are counted into the
next line).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from hearth.common.telemetry import RejectReason
from hearth.common.topics import ROOT, is_slug
from hearth.ingest.repository import RejectRow

__all__ = ["INVALID_TOPIC", "REASONS", "RejectLimiter", "RejectLog", "reject_row", "topic_owner"]

log = logging.getLogger(__name__)

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
    home, device = topic_owner(topic)
    return RejectRow(
        received_at=received_at,
        home=home,
        device=device,
        topic=topic,
        reason=reason,
        detail=detail[:_MAX_DETAIL],
        payload=payload[:keep_bytes],
        payload_size=len(payload),
    )


def topic_owner(topic: str) -> tuple[str | None, str | None]:
    """The ``(home, device)`` a topic ``hearth/<home>/<device>/...`` names, else Nones."""
    levels = topic.split("/", 3)
    if len(levels) >= 3 and levels[0] == ROOT and is_slug(levels[1]) and is_slug(levels[2]):
        return levels[1], levels[2]
    return None, None


class RejectLog:
    """Logs rejects: one line per (reason, home, device) per ``period`` seconds.

    The line says how many more of the same were refused since the last line. At most
    ``max_keys`` (reason, home, device) are remembered (the oldest forgotten first), so
    the memory is bounded whatever devices send.
    """

    def __init__(
        self,
        period: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.period = period
        self.max_keys = max_keys
        self._clock = clock
        self._last: OrderedDict[tuple[str, str | None, str | None], tuple[float, int]] = (
            OrderedDict()
        )
        self.lines = 0
        """Lines written so far."""

    def record(self, topic: str, reason: str, detail: str) -> None:
        """Note one reject; log it unless its key was logged less than ``period`` ago."""
        home, device = topic_owner(topic)
        key = (reason, home, device)
        now = self._clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.period:
            self._last[key] = (seen[0], seen[1] + 1)
            return
        suppressed = seen[1] if seen is not None else 0
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        self.lines += 1
        log.warning(
            "telemetry rejected: %s",
            reason,
            extra={
                "reason": reason,
                "home": home,
                "device": device,
                "topic": topic[:200],
                "detail": detail[:_MAX_DETAIL],
                "suppressed": suppressed,
            },
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
