"""CommandWaiters: the calls waiting for a command's outcome, at most ``capacity`` at once.

A caller asking ``wait`` opens a waiter on its command id before the command is published
(so an ack that comes back at once is not missed); whoever learns of an outcome (an ack,
an expiry) calls :meth:`CommandWaiters.notify`; the waiter then reads the verdict from the
command log. Memory is one ``asyncio.Event`` per waiting call, and at most ``capacity``
calls wait: the next one is refused (503 ``too_many_waiting``) rather than queued.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from hearth.registry.errors import TooManyWaiting

__all__ = ["CommandWaiters"]


class CommandWaiters:
    """Waiting calls by command id (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._events: dict[uuid.UUID, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._events)

    def open(self, command_id: uuid.UUID) -> None:
        """Start waiting for ``command_id``; raises :class:`TooManyWaiting` when full."""
        if len(self._events) >= self._capacity:
            raise TooManyWaiting(
                f"{self._capacity} calls are already waiting for acks: retry without wait"
            )
        self._events[command_id] = asyncio.Event()

    def close(self, command_id: uuid.UUID) -> None:
        """Stop waiting for ``command_id`` (always, in a ``finally``)."""
        self._events.pop(command_id, None)

    def notify(self, command_ids: Iterable[uuid.UUID]) -> None:
        """Wake whoever waits for these commands (ids nobody waits for are ignored)."""
        for command_id in command_ids:
            event = self._events.get(command_id)
            if event is not None:
                event.set()

    async def wait(self, command_id: uuid.UUID, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` seconds for a notification; ``False`` when none came.

        The notification is consumed: the next :meth:`wait` waits for another one.
        """
        event = self._events[command_id]
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
        except TimeoutError:
            return False
        event.clear()
        return True
