"""Outbox: one socket's room messages, sent in order as ``message`` or coalesced ``messages``.

design.md: the server sends ``message {room, topic, payload, ts, retained}``, and
``messages [...]`` "for a burst coalesced while a socket's send is backlogged (never more
than 5 ms late)". Every delivery to a socket goes through its outbox:

- when nothing is being sent to the socket, a delivery is sent at once as ``message``;
- while a send is in flight (the socket is backlogged), deliveries wait in the outbox and
  go out as ONE ``messages`` event (the same objects, in order) as soon as no send is in
  flight any more, or at the latest ``max_delay`` (5 ms) after the oldest of them was
  queued, even if the earlier send is still in flight: sends are started in order and
  the transport keeps that order (python-socketio puts each emit's packet on the
  engine.io socket's queue in the order the emits started).

What "in flight" means is the ``send`` callable's business: the service's waits for the
emit and then for the transport's writer to take everything queued for the socket (a slow
client's writer is stuck in the websocket send, so its queue, and its backlog, grows).

A socket that cannot keep up gets the latest value of each of its topics (conflation):
at most ``max_in_flight`` (2) sends are in flight at once; while that many are, a new
value of a (room, topic) that is already waiting replaces the waiting one in its place,
and the item that goes out carries ``conflated: n``, how many older values of that topic
it replaced (counted through ``on_conflated`` too). A socket that keeps up (fewer sends in
flight) gets every value.

Memory is bounded: the items waiting here plus those of sends still in flight may not
exceed ``capacity``; with conflation that takes ``capacity`` distinct topics waiting. The
delivery that would exceed it closes the outbox (everything dropped) and calls
``on_overflow``: the service disconnects that slow socket (decisions.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["MAX_DELAY", "MAX_IN_FLIGHT", "Outbox", "Send"]

log = logging.getLogger(__name__)

MAX_DELAY = 0.005
"""Seconds a delivery may wait while the socket is backlogged (design.md: 5 ms)."""

MAX_IN_FLIGHT = 2
"""Sends in flight at once to one socket; beyond, waiting values of a topic are conflated."""

Send = Callable[[str, Any], Awaitable[None]]
"""Sends ``(event, data)`` to the outbox's socket; returns when the send is no longer in
flight."""


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
    """The pending room messages of one socket and the sends in flight to it."""

    def __init__(
        self,
        send: Send,
        *,
        capacity: int = 10_000,
        max_delay: float = MAX_DELAY,
        max_in_flight: int = MAX_IN_FLIGHT,
        on_overflow: Callable[[int], None] | None = None,
        on_conflated: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self.capacity = capacity
        self.max_delay = max_delay
        self.max_in_flight = max_in_flight
        self._on_overflow = on_overflow
        self._on_conflated = on_conflated
        self._pending: deque[_Slot] = deque()
        self._latest: dict[tuple[Any, Any], _Slot] = {}  # (room, topic) -> its waiting slot
        self._in_flight = 0  # sends started and not finished
        self._held = 0  # items in those sends
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.conflated = 0
        """Values replaced by a newer value of their topic before they were sent."""

    def __len__(self) -> int:
        """Items not yet delivered: waiting here or in a send still in flight."""
        return len(self._pending) + self._held

    @property
    def backlogged(self) -> bool:
        """Whether a send to the socket is in flight."""
        return self._in_flight > 0

    def put(self, item: dict[str, Any]) -> bool:
        """Queue one ``message`` object; False when the outbox is closed or just overflowed.

        ``item`` is shared with the other members of its room: never changed here.
        """
        if self.closed:
            return False
        key = (item.get("room"), item.get("topic"))
        if self._in_flight >= self.max_in_flight:
            slot = self._latest.get(key)
            if slot is not None:  # the socket cannot keep up: the newer value replaces it
                slot.item = item
                slot.conflated += 1
                self.conflated += 1
                if self._on_conflated is not None:
                    self._on_conflated()
                return True
        if len(self) >= self.capacity:
            backlog = len(self)
            self.close()
            if self._on_overflow is not None:
                self._on_overflow(backlog)
            return False
        slot = _Slot(item)
        self._pending.append(slot)
        self._latest[key] = slot
        if self._in_flight == 0:
            self._flush()
        elif self._timer is None and self._in_flight < self.max_in_flight:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._flush)
        return True

    def discard(self, room: str) -> int:
        """Drop the waiting items of ``room`` (the socket left it); how many."""
        kept = [slot for slot in self._pending if slot.item.get("room") != room]
        dropped = len(self._pending) - len(kept)
        if dropped:
            self._pending = deque(kept)
            self._latest = {k: v for k, v in self._latest.items() if k[0] != room}
        return dropped

    def close(self) -> None:
        """Drop everything and cancel the sends in flight (the socket is gone)."""
        self.closed = True
        self._pending.clear()
        self._latest.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.closed or not self._pending or self._in_flight >= self.max_in_flight:
            return  # at the limit: the next send to finish flushes
        items = [slot.outgoing() for slot in self._pending]
        self._pending.clear()
        self._latest.clear()
        event, data = ("message", items[0]) if len(items) == 1 else ("messages", items)
        self._in_flight += 1
        self._held += len(items)
        task = asyncio.get_running_loop().create_task(self._run(event, data, len(items)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: str, data: Any, count: int) -> None:
        try:
            await self._send(event, data)
        except Exception:
            log.warning("a send to a socket failed", exc_info=True)
        finally:
            self._in_flight -= 1
            self._held -= count
        if self._pending and (self._in_flight == 0 or self._timer is None):
            self._flush()
