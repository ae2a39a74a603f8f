"""PresenceService: whether each device is online, why, and ``silent`` after three intervals.

A device's presence is its last status (``hearth/{home}/{device}/status``, retained): its
birth ``online``/``connected``, the broker's will ``offline``/``will``, its goodbye
``offline``/``disconnect``, or the registry's ``offline``/``silent``. The registry keeps it
on the device row (``online``, ``presence_reason``, ``presence_at``), written only when it
changes (a conditional update, so of several replicas hearing the same status exactly one
records it), and publishes each change as a ``presence`` change event on the system bus,
so realtime and dashboards hear it at once.

``silent``: a device marked online that the registry has not heard (any live message of
its own, :class:`~hearth.registry.shadow.LiveShadow`) for three of its intervals gets the
retained status ``offline``/``silent`` published on its behalf (:meth:`sweep_silent`, run
by the sweeper under an advisory lock so one replica does it). The clock starts no earlier
than the registry's own start, so a restarted registry waits three intervals before it
calls anyone silent. The device's own next status replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hearth.common.clock import utc_now
from hearth.common.db import Transactions
from hearth.common.messages import (
    PresenceState,
    RegistryAction,
    RegistryKind,
    Status,
    StatusReason,
)
from hearth.registry.device_bus import DeviceBus
from hearth.registry.errors import BrokerUnavailable
from hearth.registry.events import EventPublisher
from hearth.registry.repository import RegistryRepository
from hearth.registry.shadow import LiveShadow

__all__ = ["MISSED_INTERVALS", "PresenceService"]

log = logging.getLogger(__name__)

MISSED_INTERVALS = 3
"""How many intervals without a word make a device ``silent``."""


class PresenceService:
    """Presence of every device (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[RegistryRepository],
        events: EventPublisher,
        bus: DeviceBus,
        shadow: LiveShadow,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._transactions = transactions
        self._events = events
        self._bus = bus
        self._shadow = shadow
        self._clock = clock
        self._started = clock()
        self.silenced = 0
        """Devices this replica declared ``silent``."""

    async def on_status(self, home: str, device: str, status: Status) -> bool:
        """Record a device's status; ``True`` when its presence changed (an event went out)."""
        online = status.state is PresenceState.ONLINE
        reason = status.reason
        if reason is None and online:
            reason = StatusReason.CONNECTED  # plain "online" is a birth
        now = self._clock()
        at = now if status.ts is None else min(status.ts, now)  # a clock ahead never delays silent
        async with self._transactions() as repo:
            changed = await repo.set_presence(
                home,
                device,
                online=online,
                reason=None if reason is None else reason.value,
                at=at,
            )
            await repo.commit()
        if changed:
            await self._events.publish(
                RegistryKind.PRESENCE,
                home,
                RegistryAction.UPDATED,
                device=device,
                presence=Status(state=status.state, reason=reason, ts=at),
            )
        return changed

    async def sweep_silent(self) -> int:
        """Declare ``silent`` every online device unheard for three intervals; how many."""
        now = self._clock()
        silent = Status(state=PresenceState.OFFLINE, reason=StatusReason.SILENT, ts=now)
        declared: list[tuple[str, str]] = []
        async with self._transactions() as repo:
            if not await repo.try_sweep_lock():
                return 0  # another replica sweeps this round
            for home, device, interval, presence_at in await repo.online_devices():
                heard = [self._started]
                for moment in (self._shadow.last_seen(home, device), presence_at):
                    if moment is not None:
                        heard.append(moment)
                if now - max(heard) < timedelta(seconds=MISSED_INTERVALS * interval):
                    continue
                try:
                    await self._bus.publish_status(home, device, silent)
                except BrokerUnavailable:
                    log.warning("silent status not published: no broker")
                    break
                declared.append((home, device))
        for home, device in declared:  # at once, not when the retained status comes back
            await self.on_status(home, device, silent)
        self.silenced += len(declared)
        return len(declared)
