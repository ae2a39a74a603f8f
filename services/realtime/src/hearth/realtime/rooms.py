"""Rooms: the occupied rooms of this replica, their broker subscription ids and last values.

A room is named by the topic or filter its members subscribed with, exactly as given. It
exists while it has members on this replica; while it exists the replica holds one broker
subscription for it with its own MQTT 5 subscription identifier, so a message that
matches several rooms arrives once per room, tagged, and goes to each room exactly once.

Each room keeps the last value of every topic it received (retained deliveries at
subscribe time included), up to a bound, for the ``last`` of later joiners' acks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hearth.common.mqtt import MAX_SUBSCRIPTION_ID

__all__ = ["LastValue", "Room", "Rooms"]


@dataclass(frozen=True, slots=True)
class LastValue:
    """The last message of one topic: its decoded payload and when the platform received it."""

    topic: str
    payload: Any
    ts: str

    def as_dict(self) -> dict[str, Any]:
        """The ``{topic, payload, ts}`` item of a subscribe ack's ``last``."""
        return {"topic": self.topic, "payload": self.payload, "ts": self.ts}


@dataclass(eq=False)
class Room:
    """One occupied room: its name, home, subscription identifier, members and last values."""

    name: str
    home: str | None
    identifier: int
    max_values: int
    members: set[str] = field(default_factory=set)
    _last: OrderedDict[str, LastValue] = field(default_factory=OrderedDict)

    def remember(self, topic: str, payload: Any, ts: str) -> None:
        """Keep ``payload`` as ``topic``'s last value; an empty payload forgets the topic."""
        self._last.pop(topic, None)
        if payload == "":
            return
        self._last[topic] = LastValue(topic, payload, ts)
        while len(self._last) > self.max_values:
            self._last.popitem(last=False)

    def last_values(self) -> list[LastValue]:
        """The last value of every topic, oldest update first."""
        return list(self._last.values())


class Rooms:
    """The rooms of this replica by name and by subscription identifier."""

    def __init__(self, *, max_values: int = 500) -> None:
        self._by_name: dict[str, Room] = {}
        self._by_id: dict[int, Room] = {}
        self._next_id = 1
        self._max_values = max_values

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._by_name.values()))

    def get(self, name: str) -> Room | None:
        """The room called ``name``, if occupied."""
        return self._by_name.get(name)

    def by_identifier(self, identifier: int) -> Room | None:
        """The room whose broker subscription carries ``identifier``."""
        return self._by_id.get(identifier)

    def create(self, name: str, home: str | None) -> Room:
        """A new empty room with a subscription identifier no other room holds."""
        if name in self._by_name:
            raise ValueError(f"room {name!r} exists")
        room = Room(name, home, self._new_identifier(), self._max_values)
        self._by_name[name] = room
        self._by_id[room.identifier] = room
        return room

    def remove(self, room: Room) -> None:
        """Forget ``room`` (its identifier may be given out again later)."""
        if self._by_name.get(room.name) is room:
            del self._by_name[room.name]
            del self._by_id[room.identifier]

    def _new_identifier(self) -> int:
        # Counting up (wrapping) rather than reusing the lowest free id: a message still in
        # flight for a room just removed never reaches the next room given its id.
        for _ in range(MAX_SUBSCRIPTION_ID):
            identifier = self._next_id
            self._next_id = identifier % MAX_SUBSCRIPTION_ID + 1
            if identifier not in self._by_id:
                return identifier
        raise RuntimeError("no free subscription identifier")  # pragma: no cover
