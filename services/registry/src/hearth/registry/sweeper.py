"""Sweeper: the registry's periodic chores, every ``interval`` seconds until stopped.

Each round expires pending commands whose ``expires_at`` passed
(:meth:`CommandService.expire_due`) and declares unheard devices ``silent``
(:meth:`PresenceService.sweep_silent`). A round that fails (the database or broker is
away) is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging

from hearth.registry.commands import CommandService
from hearth.registry.presence import PresenceService

__all__ = ["Sweeper"]

log = logging.getLogger(__name__)


class Sweeper:
    """Runs :meth:`round` every ``interval`` seconds (see the module docstring)."""

    def __init__(
        self, commands: CommandService, presence: PresenceService, *, interval: float
    ) -> None:
        self._commands = commands
        self._presence = presence
        self._interval = interval
        self.rounds = 0
        self.failures = 0

    async def round(self) -> None:
        """One round: expire due commands, then mark silent devices."""
        await self._commands.expire_due()
        await self._presence.sweep_silent()
        self.rounds += 1

    async def run(self) -> None:
        """Sweep until cancelled."""
        while True:
            try:
                await self.round()
            except Exception:
                self.failures += 1
                log.exception("registry sweep failed; the next round tries again")
            await asyncio.sleep(self._interval)
