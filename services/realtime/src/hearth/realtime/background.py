"""Background: the realtime rules' fire-and-forget work, logged when it fails, cancelled at stop.

Re-checks after a registry event, re-verifications after a revocation mark, the end of an
expired session and the disconnection of a slow socket run outside the event that caused
them; the app's lifespan cancels what is still running when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

__all__ = ["Background"]

log = logging.getLogger(__name__)


class Background:
    """The running background tasks of one realtime app."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` in a task of its own; an exception is logged, never lost."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("realtime background work failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel every task still running and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
