"""Fan-out: room messages that arrive together go to each member socket as one frame.

:meth:`hearth.realtime.rooms.Rooms.deliver` adds each room message (the ``message``
object, built once per room) to its room's batch here; nothing is written yet.
:meth:`Fanout.flush` sends every room's batch to every member socket's outbox: a batch of
one item as ``message``, of several as ONE ``messages`` event (the same objects, in
order). The event is encoded once per room (:class:`hearth.realtime.backlog.SendQueues`
reuses the last event's packets), so a socket costs one frame and one send per batch
instead of one per message.

When the batch goes out (no timer on the way of an idle system):

- when the broker connection has handed over every message it received so far
  (:meth:`hearth.common.routing.TopicRouter.caught_up`): alone, a message goes out at
  once as ``message``; under load, what the broker sent meanwhile (aiomqtt's queue
  fills while the loop is busy writing) goes out together, so the frames per delivery
  fall exactly when the server is busiest;
- when ``max_items`` messages are gathered (bounds the frame and the wait);
- at the latest ``max_delay`` (5 ms, design.md) after the first message of the batch,
  should the intake stall inside a handler;
- before a socket joins the room (:meth:`Fanout.flush_room`): a socket that joins gets
  exactly the messages that arrive after its join. A socket that leaves is no longer a
  member when the batch goes out: it gets none of it (as with what waits in its outbox).

Per room the order is the broker's; a socket in several rooms gets each room's batch in
the order the rooms first received a message of the batch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.sessions import Sessions

if TYPE_CHECKING:
    from hearth.realtime.rooms import Room

__all__ = ["MAX_BATCH", "MAX_DELAY", "Fanout"]

MAX_BATCH = 256
"""Room messages gathered at most before the batches go out."""

MAX_DELAY = 0.005
"""Seconds a gathered message may wait at most (design.md: never more than 5 ms late)."""


class Fanout:
    """The room batches not yet sent (see the module docstring)."""

    def __init__(
        self,
        sessions: Sessions,
        metrics: RealtimeMetrics,
        *,
        max_items: int = MAX_BATCH,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self.max_items = max_items
        self.max_delay = max_delay
        self._batches: dict[Room, list[dict[str, Any]]] = {}
        self._items = 0
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        """Room messages gathered and not yet sent."""
        return self._items

    def add(self, room: Room, item: dict[str, Any]) -> None:
        """Gather ``item`` (a ``message`` object, never changed afterwards) for ``room``."""
        batch = self._batches.get(room)
        if batch is None:
            batch = self._batches[room] = []
        batch.append(item)
        self._items += 1
        if self._items >= self.max_items:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self.flush)

    def flush(self) -> None:
        """Send every gathered batch to its room's members, room by room."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._batches:
            return
        batches, self._batches, self._items = self._batches, {}, 0
        for room, items in batches.items():
            self._send(room, items)

    def flush_room(self, room: Room) -> None:
        """Send ``room``'s batch now (a socket is about to join it)."""
        items = self._batches.pop(room, None)
        if items is not None:
            self._items -= len(items)
            self._send(room, items)

    def close(self) -> None:
        """Drop what is gathered (the app is stopping)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._batches.clear()
        self._items = 0

    def _send(self, room: Room, items: list[dict[str, Any]]) -> None:
        event, data = ("message", items[0]) if len(items) == 1 else ("messages", items)
        sessions = self._sessions
        handed = 0
        for sid in list(room.members):
            session = sessions.get(sid)
            outbox = session.outbox if session is not None else None
            if outbox is not None:
                handed += outbox.put_batch(event, data, items)
        self._metrics.delivered.inc(handed)  # once per room batch: no per-socket metric call
