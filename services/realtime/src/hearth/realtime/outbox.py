"""Outbox: one socket's room messages, sent in order as ``message`` or coalesced ``messages``.

design.md: the server sends ``message {room, topic, payload, ts, retained}``, and
``messages [...]`` "for a burst coalesced while a socket's send is backlogged (never more
than 5 ms late)". Every delivery to a socket goes through its outbox, and nothing here
makes a task or waits: the outbox writes onto the socket's send queue (``write``) and
asks how many packets still wait there for the socket's writer (``depth``).

- when nothing waits (depth 0, nothing pending), a delivery is written at once as
  ``message`` (a room's batch, :meth:`Outbox.put_batch`: as the one event the room
  encoded, ``message`` or ``messages``);
- while the socket is backlogged (packets still queued), deliveries wait in the outbox and
  are written as ONE ``messages`` event (the same objects, in order) ``max_delay`` (5 ms)
  after the oldest of them was queued;
- a socket that cannot keep up gets the latest value of each of its topics (conflation):
  while ``max_in_flight`` (2) or more packets wait on its queue, nothing more is written
  (the outbox looks again every ``max_delay``) and a new value of a (room, topic) that is
  already waiting replaces the waiting one in its place; the item written carries
  ``conflated: n``, how many older values of that topic it replaced (counted through
  ``on_conflated`` too). A socket that keeps up gets every value.

Memory is bounded: the items waiting here plus the packets on the socket's queue may not
exceed ``capacity`` (with conflation, ``capacity`` distinct topics waiting). The delivery
that would exceed it closes the outbox (everything dropped) and calls ``on_overflow``: the
service disconnects that slow socket (decisions.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_DELAY", "MAX_IN_FLIGHT", "Outbox", "Write"]

MAX_DELAY = 0.005
"""Seconds a delivery may wait while the socket is backlogged (design.md: 5 ms)."""

MAX_IN_FLIGHT = 2
"""Packets waiting on a socket's queue at which the outbox stops writing and conflates."""

_NOTHING: deque[Any] = deque(maxlen=0)
"""The pending items of every outbox that has none (shared, never appended to)."""

Write = Callable[[str, Any], bool]
"""Puts ``(event, data)`` on the outbox's socket's send queue; False if the socket is gone."""


class _Slot:
    """A waiting item, and how many older values of its (room, topic) it replaced."""

    __slots__ = ("conflated", "item")

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item
        self.conflated = 0

    def outgoing(self) -> dict[str, Any]:
        """The item as sent: with ``conflated`` when it replaced older values."""
        return self.item if not self.conflated else {**self.item, "conflated": self.conflated}


class Outbox:
    """The pending room messages of one socket (see the module docstring)."""

    def __init__(
        self,
        write: Write,
        depth: Callable[[], int],
        *,
        capacity: int = 10_000,
        max_delay: float = MAX_DELAY,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_overflow: Callable[[int], None] | None = None,
        on_conflated: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._depth = depth
        self.capacity = capacity
        self.max_delay = max_delay
        self.max_in_flight = max_in_flight
        self._on_overflow = on_overflow
        self._on_conflated = on_conflated
        # Made when the socket first backlogs (most never do: an idle socket holds neither).
        self._pending: deque[_Slot] = _NOTHING
        self._latest: dict[tuple[Any, Any], _Slot] = {}  # (room, topic) -> its waiting slot
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.conflated = 0
        """Values replaced by a newer value of their topic before they were written."""

    def __len__(self) -> int:
        """Items not yet delivered: waiting here or packets on the socket's queue."""
        return len(self._pending) + self._depth()

    @property
    def backlogged(self) -> bool:
        """Whether packets wait on the socket's queue or items here."""
        return bool(self._pending) or self._depth() > 0

    def put(self, item: dict[str, Any]) -> bool:
        """Queue one ``message`` object; False when the outbox is closed or just overflowed.

        ``item`` is shared with the other members of its room: never changed here.
        """
        if self.closed:
            return False
        depth = self._depth()
        if not self._pending and depth == 0:
            return self._write("message", item)  # nothing waits: at once, alone
        key = (item.get("room"), item.get("topic"))
        if depth >= self.max_in_flight:
            slot = self._latest.get(key)
            if slot is not None:  # the socket cannot keep up: the newer value replaces it
                slot.item = item
                slot.conflated += 1
                self.conflated += 1
                if self._on_conflated is not None:
                    self._on_conflated()
                return True
        if len(self._pending) + depth >= self.capacity:
            backlog = len(self._pending) + depth
            self.close()
            if self._on_overflow is not None:
                self._on_overflow(backlog)
            return False
        slot = _Slot(item)
        if self._pending is _NOTHING:
            self._pending = deque()
        self._pending.append(slot)
        self._latest[key] = slot
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._flush)
        return True

    def put_batch(self, event: str, data: Any, items: list[dict[str, Any]]) -> int:
        """Queue a room's batch (:mod:`hearth.realtime.fanout`); how many items it took.

        ``(event, data)`` is the batch as one event (``message`` with its one item, or
        ``messages`` with ``items``), shared with every member of the room and encoded once:
        written as it is when nothing waits; while backlogged, the items go one by one
        through :meth:`put` (coalesced, conflated, bounded).
        """
        if self.closed:
            return 0
        if not self._pending and self._depth() == 0:
            return len(items) if self._write(event, data) else 0
        taken = 0
        for item in items:
            if not self.put(item):
                break
            taken += 1
        return taken

    def discard(self, room: str) -> int:
        """Drop the waiting items of ``room`` (the socket left it); how many."""
        kept = [slot for slot in self._pending if slot.item.get("room") != room]
        dropped = len(self._pending) - len(kept)
        if dropped:
            self._pending = deque(kept)
            self._latest = {k: v for k, v in self._latest.items() if k[0] != room}
        return dropped

    def close(self) -> None:
        """Drop everything (the socket is gone)."""
        self.closed = True
        self._pending = _NOTHING
        self._latest = {}
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        self._timer = None
        if self.closed or not self._pending:
            return
        if self._depth() >= self.max_in_flight:  # still stuck: look again later
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._flush)
            return
        items = [slot.outgoing() for slot in self._pending]
        self._pending = _NOTHING  # the deque's block goes back (a socket rarely stays behind)
        self._latest = {}
        if len(items) == 1:
            self._write("message", items[0])
        else:
            self._write("messages", items)
