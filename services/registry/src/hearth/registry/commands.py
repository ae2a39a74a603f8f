"""CommandService: the one command path (send, wait for the outcome, the command log).

``send`` is what ``POST .../devices/{device}/commands`` calls, and what realtime's
``publish`` and automation reach through that route with the caller's token:

1. the caller's right (member or owner: ``write``) and the value against the property's
   capability (422 naming the bound it breaks);
2. the command is written to the log (``outcome`` null), then published at QoS 1 with
   ``expires_at`` and the MQTT 5 message expiry (:class:`~hearth.registry.device_bus.DeviceBus`);
   a broker that does not take it removes it from the log again and answers 503;
3. with ``wait``, the call waits (bounded: ``wait`` seconds, and never past ``expires_at``)
   for the verdict: the device's ack (``done``, ``rejected``, ``expired``) or, when
   ``expires_at`` passes first, ``expired`` recorded by the registry itself (the broker
   drops an expired queued command, so the device never answers it). A wait that ends
   first answers ``timeout`` and the log keeps waiting for the verdict.

Verdicts are recorded once (the first wins) by a conditional update, so every replica may
record them: each hears every ack, and each may expire due commands (:meth:`expire_due`,
run by the sweeper). The service knows nothing of FastAPI, SQL or MQTT.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from hearth.common.authorization import Action
from hearth.common.clock import utc_now
from hearth.common.commands import CommandRecord, CommandRequest
from hearth.common.db import Transactions
from hearth.common.messages import Ack, Command, CommandOutcome
from hearth.common.tokens import Caller
from hearth.registry.device_bus import DeviceBus
from hearth.registry.errors import InvalidCommandValue, UnknownProperty
from hearth.registry.guards import guard_device, user_id
from hearth.registry.models import CommandRow
from hearth.registry.repository import RegistryRepository
from hearth.registry.waiters import CommandWaiters

__all__ = ["CommandService"]

log = logging.getLogger(__name__)

_EXPIRY_GRACE = 0.05
"""Seconds past ``expires_at`` a waiting call gives an ack that is already on its way."""


class CommandService:
    """Commands to devices and their log (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[RegistryRepository],
        bus: DeviceBus,
        waiters: CommandWaiters,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._transactions = transactions
        self._bus = bus
        self._waiters = waiters
        self._clock = clock
        self.acks = 0
        """Acks that recorded a verdict."""
        self.stray_acks = 0
        """Acks for no pending command of that device (late, duplicate, or unknown ids)."""

    # ------------------------------------------------------------------ sending

    async def send(
        self, caller: Caller, home: str, device: str, request: CommandRequest
    ) -> CommandRecord:
        """Send a command to a device and, with ``wait``, wait for its verdict."""
        now = self._clock()
        row = CommandRow(
            id=uuid.uuid4(),
            home=home,
            device=device,
            property=request.property,
            value=request.value,
            issued_at=now,
            expires_at=now + timedelta(seconds=request.ttl),
            by=user_id(caller),
        )
        waiting = request.wait > 0
        if waiting:
            self._waiters.open(row.id)  # full: 503 before anything is logged or sent
        try:
            async with self._transactions() as repo:
                found = await guard_device(repo, caller, home, device, Action.WRITE)
                capability = found.find_property(request.property)
                if capability is None:
                    raise UnknownProperty(f"{device!r} has no property {request.property!r}")
                refusal = capability.refusal(request.value)
                if refusal is not None:
                    raise InvalidCommandValue(_refused(request, refusal))
                repo.add(row)
                await repo.commit()
            command = Command(
                id=row.id,
                value=request.value,
                issued_at=now,
                expires_at=row.expires_at,
                by=caller.user_id,
            )
            await self._publish(row, command, request.ttl)
            if not waiting:
                return row.record()
            return await self._wait(row, request.wait)
        finally:
            if waiting:
                self._waiters.close(row.id)

    async def _publish(self, row: CommandRow, command: Command, ttl: int) -> None:
        try:
            await self._bus.send_command(row.home, row.device, row.property, command, ttl=ttl)
        except BaseException:
            async with self._transactions() as repo:  # never sent: not a command to log
                sent = await repo.get_command(row.id)
                if sent is not None:
                    await repo.delete(sent)
                    await repo.commit()
            raise

    async def _wait(self, row: CommandRow, wait: float) -> CommandRecord:
        """Wait for the verdict up to ``wait`` seconds (and never past ``expires_at``)."""
        start = self._clock()
        deadline = start + timedelta(seconds=wait)
        expires = row.expires_at
        while True:
            now = self._clock()
            until = deadline if expires is None else min(deadline, expires)
            remaining = (until - now).total_seconds()
            if expires is not None and until == expires:
                remaining += _EXPIRY_GRACE
            await self._waiters.wait(row.id, remaining)
            now = self._clock()
            if expires is not None and now >= expires:
                await self._expire(now, row.id)
            record = await self._read(row.id)
            if record.outcome is not None:
                return record
            if now >= deadline:
                return record.model_copy(update={"outcome": CommandOutcome.TIMEOUT})

    async def _read(self, command_id: uuid.UUID) -> CommandRecord:
        async with self._transactions() as repo:
            found = await repo.get_command(command_id)
        assert found is not None  # commands are never deleted once published
        return found.record()

    # ------------------------------------------------------------------ verdicts

    async def on_ack(self, home: str, device: str, ack: Ack) -> None:
        """A device's ack: record its verdict (once) and wake whoever waits for it."""
        async with self._transactions() as repo:
            recorded = await repo.answer_command(
                ack.id,
                home=home,
                device=device,
                outcome=ack.outcome.value,
                reason=ack.reason,
                result=ack.value,
                at=self._clock(),
            )
            await repo.commit()
        if recorded:
            self.acks += 1
        else:
            self.stray_acks += 1
        self._waiters.notify((ack.id,))

    async def expire_due(self) -> int:
        """Record ``expired`` for every pending command whose ``expires_at`` passed."""
        return len(await self._expire(self._clock()))

    async def _expire(self, now: datetime, command_id: uuid.UUID | None = None) -> list[uuid.UUID]:
        async with self._transactions() as repo:
            expired = list(await repo.expire_commands(now, command_id=command_id))
            await repo.commit()
        self._waiters.notify(expired)
        return expired

    # ------------------------------------------------------------------ the log

    async def history(
        self,
        caller: Caller,
        home: str,
        device: str,
        *,
        since: datetime | None,
        limit: int,
    ) -> list[CommandRecord]:
        """The device's commands issued after ``since``, newest first (members and viewers)."""
        async with self._transactions() as repo:
            await guard_device(repo, caller, home, device, Action.READ)
            rows = await repo.list_commands(home, device, since=since, limit=limit)
        return [row.record() for row in rows]


def _refused(request: CommandRequest, refusal: str) -> str:
    """``level: 150 is above the maximum 100``, ``power: must be true or false``."""
    if refusal.startswith(("below", "above", "not")):
        return f"{request.property}: {json.dumps(request.value)} is {refusal}"
    return f"{request.property}: {refusal}"
