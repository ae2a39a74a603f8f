"""DeviceCatalogue: every device the registry knows, as ingest checks readings against it.

Ingest has no credential to list devices at the registry: it learns them from the
registry's retained capability snapshots on ``hearth-sys/registry/devices/{home}/{device}``
(:mod:`hearth.common.capability_feed`), which its telemetry session subscribes to (QoS 0,
not shared, retained messages sent on every subscribe). An empty payload removes the
device.

**Ordering.** Telemetry queued in the persistent session arrives on connect, possibly
before the retained snapshots. So the catalogue is *ready* only once a barrier came back:
after the SUBACK the consumer publishes a token on its own
``hearth-sys/ingest/barrier/{replica}``; Mosquitto delivers to one client in order, so the
snapshots sent for the subscription precede it. Until then the batch writer holds
batches (unacknowledged, at most Receive Maximum of them) instead of rejecting readings
of devices it has not heard of yet. A disconnect makes it not ready again.

Snapshots and barriers are applied on paho's thread as they arrive (plain dict updates),
so a reading is never checked against an older catalogue than the messages before it;
the readiness event is set on the event loop.

**Checks** (:meth:`check`): unknown device -> ``unknown_device``; a declared metric with a
range and a value outside it -> ``out_of_declared_range`` (which bound); an undeclared
metric -> ``undeclared_metric`` when the device refuses them, else the reading is stored
and the metric reported as discovered (:meth:`should_report`: at most once a minute per
metric until the registry's snapshot lists it).

**Memory**: one snapshot per live device of the registry (at most 64 metrics each), and
at most ``max_reported`` remembered reports (forgotten all at once when full).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from hearth.common.capability_feed import DeviceSnapshot
from hearth.common.messages import MessageError
from hearth.common.telemetry import RejectReason
from hearth.common.topics import TopicError, parse_registry_device_topic

__all__ = ["DISCOVERED", "DeviceCatalogue", "Discovered"]

log = logging.getLogger(__name__)


class Discovered:
    """:meth:`DeviceCatalogue.check`'s answer for an undeclared metric to store and report."""


DISCOVERED = Discovered()
"""The one :class:`Discovered` answer."""


class DeviceCatalogue:
    """The devices' snapshots and the start-up barrier (see the module docstring)."""

    def __init__(self, *, report_interval: float = 60.0, max_reported: int = 10_000) -> None:
        self._devices: dict[tuple[str, str], DeviceSnapshot] = {}
        self._lock = threading.Lock()
        self._token = 0  # the barrier this connection waits for; 0: none
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reported: dict[tuple[str, str, str], float] = {}
        self._report_interval = report_interval
        self._max_reported = max_reported
        self.malformed = 0
        """Snapshots ignored as malformed."""

    def __len__(self) -> int:
        return len(self._devices)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Set the readiness event on ``loop`` (the lifespan's)."""
        self._loop = loop

    # ------------------------------------------------------------------ readiness

    @property
    def ready(self) -> bool:
        """Whether the retained snapshots of this connection have all arrived."""
        return self._ready.is_set()

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until ready; ``False`` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def expect_barrier(self) -> str:
        """A new connection's barrier token (paho's thread); not ready until it comes back."""
        with self._lock:
            self._token += 1
            token = str(self._token)
        self._call(self._ready.clear)
        return token

    def connection_lost(self) -> None:
        """Not ready until the next connection's barrier (paho's thread)."""
        with self._lock:
            self._token += 1
        self._call(self._ready.clear)

    def barrier(self, payload: bytes) -> None:
        """A barrier came back (paho's thread): ready if it is this connection's."""
        with self._lock:
            current = payload == str(self._token).encode()
        if current:
            log.info("device catalogue ready", extra={"devices": len(self._devices)})
            self._call(self._ready.set)

    def _call(self, action: Callable[[], object]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(action)

    # ------------------------------------------------------------------ snapshots

    def apply(self, topic: str, payload: bytes) -> None:
        """Apply one retained snapshot (empty: the device is gone); malformed ones are ignored."""
        try:
            key = parse_registry_device_topic(topic)
            if not payload:
                self._devices.pop(key, None)
                return
            snapshot = DeviceSnapshot.from_bytes(payload)
        except (TopicError, MessageError) as exc:
            self.malformed += 1
            log.warning("ignoring a malformed device snapshot", extra={"error": str(exc)})
            return
        if (snapshot.home, snapshot.device) != key:
            self.malformed += 1
            log.warning("ignoring a device snapshot on another device's topic")
            return
        self._devices[key] = snapshot

    # ------------------------------------------------------------------ checks

    def check(
        self, home: str, device: str, metric: str, value: float, is_bool: bool
    ) -> tuple[RejectReason, str] | Discovered | None:
        """A reject ``(reason, detail)``, :data:`DISCOVERED`, or ``None`` (store it)."""
        snapshot = self._devices.get((home, device))
        if snapshot is None:
            return (
                RejectReason.UNKNOWN_DEVICE,
                f"the registry knows no device {device!r} in {home!r}",
            )
        declared = snapshot.metric(metric)
        if declared is None:
            if snapshot.refuse_undeclared:
                return (
                    RejectReason.UNDECLARED_METRIC,
                    f"{device!r} does not declare {metric!r} and refuses undeclared metrics",
                )
            return DISCOVERED
        if is_bool:
            return None
        broken = declared.range_violation(value)
        if broken is not None:
            return RejectReason.OUT_OF_DECLARED_RANGE, broken
        return None

    def should_report(self, home: str, device: str, metric: str) -> bool:
        """Whether to report ``metric`` as discovered now (at most once per interval)."""
        key = (home, device, metric)
        now = time.monotonic()
        last = self._reported.get(key)
        if last is not None and now - last < self._report_interval:
            return False
        if len(self._reported) >= self._max_reported:
            self._reported.clear()
        self._reported[key] = now
        return True
