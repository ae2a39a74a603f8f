"""RetentionService: how long a home's readings are kept, read by members and set by owners.

Reading asks the registry for ``read`` on the home, changing it for ``manage`` (through
the shared :class:`~hearth.common.registry_client.RegistryClient`, as the history API).
A home's retention is at most the 1-minute rollups' (rollups outlive raw readings); an
override (a device, a metric of every device, a metric of one device) only shortens it.
The storage job applies them (:mod:`hearth.ingest.maintenance`): partitions past the
longest home retention are dropped; shorter retentions are deleted in bounded batches.
"""

from __future__ import annotations

from hearth.common.authorization import Action
from hearth.common.db import Transactions
from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import Caller
from hearth.ingest.errors import InvalidRetention, RetentionNotFound
from hearth.ingest.history import refuse
from hearth.ingest.maintenance import StoragePolicy
from hearth.ingest.maintenance_repository import MaintenanceRepository, RetentionEntry
from hearth.ingest.models import RetentionOut, RetentionOverride

__all__ = ["RetentionService"]


class RetentionService:
    """The retention API's rules (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[MaintenanceRepository],
        registry: RegistryClient,
        policy: StoragePolicy,
    ) -> None:
        self._transactions = transactions
        self._registry = registry
        self.policy = policy

    async def _may(self, caller: Caller, action: Action, home: str) -> None:
        decision = await self._registry.authorize_home(caller, action, home)
        refuse(caller, decision, f"home {home!r}")

    async def show(self, caller: Caller, home: str) -> RetentionOut:
        """``home``'s retention and overrides."""
        await self._may(caller, Action.READ, home)
        async with self._transactions() as repo:
            entries = await repo.retention_of(home)
        own = [e.days for e in entries if not e.device and not e.metric]
        return RetentionOut(
            home=home,
            days=own[0] if own else self.policy.retention_days,
            default=not own,
            overrides=[
                RetentionOverride(device=e.device or None, metric=e.metric or None, days=e.days)
                for e in entries
                if e.device or e.metric
            ],
            rollup_minute_days=self.policy.rollup_minute_days,
            rollup_hour_days=self.policy.rollup_hour_days,
        )

    async def set(
        self,
        caller: Caller,
        home: str,
        days: int,
        *,
        device: str | None = None,
        metric: str | None = None,
    ) -> RetentionOut:
        """Set ``home``'s retention, or an override for ``device`` and/or ``metric``."""
        await self._may(caller, Action.MANAGE, home)
        if days > self.policy.rollup_minute_days:
            raise InvalidRetention(
                f"{days} days is longer than the 1-minute rollups are kept "
                f"({self.policy.rollup_minute_days} days): rollups outlive raw readings"
            )
        async with self._transactions() as repo:
            await repo.set_retention(RetentionEntry(home, device or "", metric or "", days))
            await repo.commit()
        return await self.show(caller, home)

    async def clear(
        self, caller: Caller, home: str, *, device: str | None = None, metric: str | None = None
    ) -> RetentionOut:
        """Remove ``home``'s own retention (back to the default) or one override."""
        await self._may(caller, Action.MANAGE, home)
        async with self._transactions() as repo:
            found = await repo.clear_retention(home, device or "", metric or "")
            await repo.commit()
        if not found:
            raise RetentionNotFound("no such retention setting")
        return await self.show(caller, home)
