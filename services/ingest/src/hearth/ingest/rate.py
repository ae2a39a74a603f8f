"""Per-device rate limits: Mosquitto has none, so ingest applies one to each device.

:class:`DeviceRateLimiter` keeps a token bucket per ``(home, device)``: ``rate`` messages
per second, up to ``burst`` at once. A telemetry message over the limit is a reject with
reason ``rate_limited`` (:class:`hearth.common.telemetry.RejectReason`): it is acknowledged
with its batch like every other delivery, counted in
``hearth_ingest_rejected_total{reason="rate_limited"}``, and sampled into the reject table:
at most one per device per ``sample_period`` seconds (:meth:`DeviceRateLimiter.sample`),
so a flooding device cannot crowd the other devices' rejects out of the table's own
rate limit. The check is a dictionary look-up in the classification of a batch: a
flooding device costs one cheap classification per message and never holds up the
others' messages (they are in the same batches, stored and acknowledged as usual).

Memory: at most ``max_devices`` buckets (the least recently seen forgotten first; a
forgotten device starts again with a full bucket), ~200 bytes each: 50,000 devices are
~10 MB.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["DeviceRateLimiter"]


class DeviceRateLimiter:
    """Token buckets per device (see the module docstring)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_devices: int = 50_000,
        sample_period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_devices = max_devices
        self.sample_period = sample_period
        self._clock = clock
        # (home, device) -> [tokens, last refill, last sampled reject]
        self._buckets: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, home: str, device: str) -> bool:
        """Take one token from the device's bucket: whether this message is within the limit."""
        key = (home, device)
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [float(self.burst), now, -self.sample_period]
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_devices:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1:
            bucket[0] -= 1
            return True
        return False

    def sample(self, home: str, device: str) -> bool:
        """Whether this over-limit message is the device's sample to keep in the reject table."""
        bucket = self._buckets.get((home, device))
        if bucket is None:
            return True
        now = self._clock()
        if now - bucket[2] >= self.sample_period:
            bucket[2] = now
            return True
        return False

    def detail(self) -> str:
        """The reject's detail: the limit that was exceeded."""
        return f"over {self.rate:g} messages/s per device (burst {self.burst})"
