"""Rooms: joining and leaving, the broker subscription of each room, and the fan-out.

A room is named by the topic or filter its members subscribed with, exactly as given. It
exists while it has members on this replica; while it exists the replica holds one broker
subscription for it with its own MQTT 5 subscription identifier, so a message that
matches several rooms arrives once per room, tagged, and goes to each room exactly once.

- **join**: the first member of a room makes the replica subscribe at the broker (the
  room's own identifier); a refused subscription undoes the join (``forbidden``).
- **leave**: the last member leaving (or disconnecting) unsubscribes.
- Joins and leaves of one room are serialised by that room's own lock, held across the
  broker round trip; rooms do not wait for each other, so one slow SUBACK holds up only
  the joins of its own room.
- **fan-out** (:meth:`Rooms.deliver`): each broker message goes to the room(s) of the
  subscription identifier(s) it carries, updates their last values, and joins the room's
  batch; :meth:`Rooms.flush` (when the broker connection has caught up) sends each batch
  to the outbox of every member socket as one event (:mod:`hearth.realtime.fanout`,
  :mod:`hearth.realtime.outbox`). A room's batch goes out before a socket joins it; a
  socket that leaves gets none of what was gathered (as with what waits in its outbox).

Each room keeps the last value of every topic it received (retained deliveries at
subscribe time included), up to a bound, for the ``last`` of later joiners' acks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from hearth.common.clock import utc_now
from hearth.common.messages import format_timestamp
from hearth.common.mqtt import MAX_SUBSCRIPTION_ID, MqttRefused
from hearth.common.topics import TopicFilter, filter_home
from hearth.realtime.errors import SocketError
from hearth.realtime.fanout import Fanout
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.payloads import decode_payload
from hearth.realtime.ports import BrokerSubscriber, SocketServer
from hearth.realtime.sessions import Session, Sessions

__all__ = ["LastValue", "Room", "RoomTable", "Rooms"]


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
    """One occupied room: its filter, home, subscription identifier, members, last values."""

    target: TopicFilter
    identifier: int
    max_values: int
    members: set[str] = field(default_factory=set)
    _last: OrderedDict[str, LastValue] = field(default_factory=OrderedDict)

    @property
    def name(self) -> str:
        """The room's name: its topic or filter as the members gave it."""
        return self.target.filter

    @property
    def home(self) -> str | None:
        """The home the room's filter stays in (``None`` if it names none)."""
        return filter_home(self.target)

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


class RoomTable:
    """The occupied rooms of this replica by name and by subscription identifier."""

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

    def create(self, target: TopicFilter) -> Room:
        """A new empty room with a subscription identifier no other room holds."""
        if target.filter in self._by_name:
            raise ValueError(f"room {target.filter!r} exists")
        room = Room(target, self._new_identifier(), self._max_values)
        self._by_name[room.name] = room
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


@dataclass(eq=False)
class _RoomLock:
    """A room's lock and how many joins and leaves hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Rooms:
    """Joins, leaves, broker subscriptions and fan-out (see the module docstring)."""

    def __init__(
        self,
        sio: SocketServer,
        broker: BrokerSubscriber,
        sessions: Sessions,
        metrics: RealtimeMetrics,
        *,
        last_values: int = 500,
    ) -> None:
        self._sio = sio
        self._broker = broker
        self._sessions = sessions
        self._metrics = metrics
        self.table = RoomTable(max_values=last_values)
        self.fanout = Fanout(sessions, metrics)
        self._locks: dict[str, _RoomLock] = {}

    def __len__(self) -> int:
        return len(self.table)

    def __iter__(self) -> Iterator[Room]:
        return iter(self.table)

    def get(self, name: str) -> Room | None:
        """The occupied room called ``name``."""
        return self.table.get(name)

    # ------------------------------------------------------------------ join and leave

    async def join(self, session: Session, target: TopicFilter) -> None:
        """Put ``session`` into the room of ``target``; subscribe if it is the first member.

        Raises :class:`SocketError` ``unauthorized`` when the socket went away meanwhile
        and ``forbidden`` when the broker refused the subscription.
        """
        name = target.filter
        async with self._room_lock(name):
            if not self._sessions.is_current(session):  # gone while we waited
                raise SocketError("unauthorized", "disconnected meanwhile")
            if name in session.rooms:
                return
            room = self.table.get(name)
            new = room is None
            if room is None:
                room = self.table.create(target)
            self.fanout.flush_room(room)  # what arrived before the join is not the joiner's
            room.members.add(session.sid)
            session.rooms.add(name)
            await self._sio.enter_room(session.sid, name)
            if new:
                try:
                    await self._broker.subscribe(name, 1, identifier=room.identifier)
                except MqttRefused:
                    room.members.discard(session.sid)
                    session.rooms.discard(name)
                    self.table.remove(room)
                    with contextlib.suppress(Exception):
                        await self._sio.leave_room(session.sid, name)
                    raise SocketError("forbidden", "the broker refused this topic") from None
            self._count()

    async def leave(self, session: Session, name: str, *, socket_gone: bool = False) -> bool:
        """Take ``session`` out of room ``name``; whether it was in it."""
        async with self._room_lock(name):
            if name not in session.rooms:
                return False
            session.rooms.discard(name)
            if session.outbox is not None:
                session.outbox.discard(name)  # not yet sent: the socket is no longer in it
            room = self.table.get(name)
            if room is None:
                return True
            room.members.discard(session.sid)  # its room's gathered batch is not its anymore
            if not socket_gone:
                with contextlib.suppress(Exception):  # the socket may be gone already
                    await self._sio.leave_room(session.sid, name)
            if not room.members:
                self.table.remove(room)
                await self._broker.unsubscribe(name)
            self._count()
            return True

    async def leave_all(self, session: Session, *, socket_gone: bool = False) -> list[str]:
        """Take ``session`` out of every room; the names of those it left."""
        return [
            name
            for name in list(session.rooms)
            if await self.leave(session, name, socket_gone=socket_gone)
        ]

    @contextlib.asynccontextmanager
    async def _room_lock(self, name: str) -> AsyncIterator[None]:
        """Hold room ``name``'s own lock (made on first use, dropped when nobody holds it)."""
        entry = self._locks.get(name)
        if entry is None:
            entry = self._locks[name] = _RoomLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[name]

    def _count(self) -> None:
        self._metrics.rooms.set(len(self.table))
        self._metrics.broker_subscriptions.set(len(self.table))

    # ------------------------------------------------------------------ fan-out

    def deliver(self, message: aiomqtt.Message) -> None:
        """One room message from the broker: into the batch of each room of its identifiers."""
        identifiers = getattr(message.properties, "SubscriptionIdentifier", None) or []
        rooms = [r for r in map(self.table.by_identifier, identifiers) if r is not None]
        if not rooms:
            return
        topic = str(message.topic)
        value = decode_payload(message.payload)
        ts = format_timestamp(utc_now())
        for room in rooms:
            room.remember(topic, value, ts)
            if not room.members:
                continue
            item = {
                "room": room.name,
                "topic": topic,
                "payload": value,
                "ts": ts,
                "retained": bool(message.retain),
            }
            self.fanout.add(room, item)

    def flush(self) -> None:
        """Send the gathered batches (the broker connection handed over all it received)."""
        self.fanout.flush()
