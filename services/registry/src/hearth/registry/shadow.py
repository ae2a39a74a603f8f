"""LiveShadow: what the registry heard from each device lately, in memory and bounded in bytes.

Per device it keeps the *reported* state of each property (from ``state/{property}``,
retained deliveries included, so a restarted registry knows it at once) and when the device
was last heard (``last_seen``: any live message of its own: telemetry, state, ack, its
birth or goodbye). Desired values and presence live in the database (the command log,
the device row); this is only what the broker can tell again after a restart.

Memory is bounded: a value whose payload is above ``max_value_bytes`` is not kept (counted
in ``dropped``), a device keeps at most ``max_properties`` properties, and when the total
(payload bytes plus a fixed overhead per entry) passes ``max_bytes`` the devices heard
least recently are forgotten first (counted in ``evicted``) until it fits.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["DeviceShadow", "LiveShadow", "Reported"]

_DEVICE_OVERHEAD = 400
"""Bytes counted per device (its key, dicts, timestamps)."""
_PROPERTY_OVERHEAD = 250
"""Bytes counted per property beyond its payload."""


@dataclass(frozen=True, slots=True)
class Reported:
    """A property's reported value and when it was reported (the payload's ``ts`` if sent)."""

    value: Any
    at: datetime
    size: int


@dataclass(slots=True)
class DeviceShadow:
    """One device's reported properties and when it was last heard."""

    reported: dict[str, Reported] = field(default_factory=dict)
    last_seen: datetime | None = None
    size: int = _DEVICE_OVERHEAD


class LiveShadow:
    """Reported state and last seen of every device heard (see the module docstring)."""

    def __init__(
        self, *, max_bytes: int, max_properties: int = 64, max_value_bytes: int = 1024
    ) -> None:
        self._devices: OrderedDict[tuple[str, str], DeviceShadow] = OrderedDict()
        self._max_bytes = max_bytes
        self._max_properties = max_properties
        self._max_value_bytes = max_value_bytes
        self.bytes = 0
        """The bytes counted now (never above ``max_bytes`` once a change is done)."""
        self.dropped = 0
        """Reports not kept: too large, or one property too many."""
        self.evicted = 0
        """Devices forgotten to stay within ``max_bytes``."""

    def __len__(self) -> int:
        return len(self._devices)

    def _entry(self, home: str, device: str) -> DeviceShadow:
        key = (home, device)
        entry = self._devices.get(key)
        if entry is None:
            entry = self._devices[key] = DeviceShadow()
            self.bytes += entry.size
        else:
            self._devices.move_to_end(key)
        return entry

    def _fit(self) -> None:
        while self.bytes > self._max_bytes and len(self._devices) > 1:
            _, oldest = self._devices.popitem(last=False)
            self.bytes -= oldest.size
            self.evicted += 1

    def heard(self, home: str, device: str, at: datetime) -> None:
        """The device said something live at ``at``."""
        entry = self._entry(home, device)
        if entry.last_seen is None or at > entry.last_seen:
            entry.last_seen = at
        self._fit()

    def report(
        self, home: str, device: str, prop: str, value: Any, at: datetime, payload_size: int
    ) -> bool:
        """Keep ``prop``'s reported ``value``; ``False`` when it was not kept (too large)."""
        entry = self._entry(home, device)
        old = entry.reported.get(prop)
        if payload_size > self._max_value_bytes or (
            old is None and len(entry.reported) >= self._max_properties
        ):
            self.dropped += 1
            return False
        new = Reported(value, at, payload_size + _PROPERTY_OVERHEAD)
        entry.reported[prop] = new
        delta = new.size - (0 if old is None else old.size)
        entry.size += delta
        self.bytes += delta
        self._fit()
        return True

    def reported(self, home: str, device: str) -> dict[str, Reported]:
        """The reported properties of a device (empty when none is known)."""
        entry = self._devices.get((home, device))
        return {} if entry is None else dict(entry.reported)

    def last_seen(self, home: str, device: str) -> datetime | None:
        """When the device was last heard live, or ``None``."""
        entry = self._devices.get((home, device))
        return None if entry is None else entry.last_seen

    def forget(self, home: str, device: str) -> None:
        """Drop everything about a device (it was deleted)."""
        entry = self._devices.pop((home, device), None)
        if entry is not None:
            self.bytes -= entry.size
