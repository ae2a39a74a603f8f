"""StorageMaintenance: the periodic storage job of ingest (partitions, rollups, retention).

Ingest's lifespan runs :meth:`StorageMaintenance.run_once` at start and then every
``HEARTH_INGEST_MAINTENANCE_INTERVAL`` seconds. Each step is its own transaction and
starts with a ``pg_try_advisory_xact_lock``: with several ingest replicas one does a step
and the others skip it. Steps, in order:

1. **partitions**: for ``telemetry`` and ``rollup_minute``, a partition for this UTC month
   and the next ``partitions_ahead``; rows that landed in the default partition are moved
   into their month's new partition (or deleted when past retention); month partitions
   entirely older than the table's horizon are dropped (``DROP TABLE``, not row deletes).
   The raw horizon is the longest home retention in force (a home's own, else
   ``retention_days``); the 1-minute rollups' is ``rollup_minute_days``.
2. **rollups**: marked minutes are rolled up ``rollup_batch`` at a time (at most
   ``rollup_steps`` batches per run), see :mod:`hearth.ingest.maintenance_repository`.
3. **retention deletes**: readings past a retention *shorter* than the raw horizon (a home
   with a shorter retention than another home's, a device's or metric's override, homes
   without their own when another home keeps longer) are deleted ``delete_batch`` rows per
   statement, at most ``delete_steps`` statements per run; 1-hour rollups past
   ``rollup_hour_days`` likewise.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from hearth.common.db import Transactions
from hearth.ingest.config import IngestSettings
from hearth.ingest.maintenance_repository import MaintenanceRepository, Partitioned, RetentionEntry

__all__ = [
    "ROLLUP_MINUTE",
    "TELEMETRY",
    "MaintenanceReport",
    "StorageMaintenance",
    "StoragePolicy",
    "add_months",
    "month_of",
]

log = logging.getLogger(__name__)

TELEMETRY: Final = Partitioned("telemetry", "ts")
ROLLUP_MINUTE: Final = Partitioned("rollup_minute", "bucket")


def _lock_key(step: str) -> int:
    digest = hashlib.blake2b(f"hearth-ingest-maintenance:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def month_of(moment: datetime) -> datetime:
    """The first instant of ``moment``'s UTC month."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """``month`` (a first instant of a month) moved by ``count`` months."""
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _partition_month(table: Partitioned, name: str) -> datetime | None:
    prefix = f"{table.table}_p"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], "%Y_%m").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class StoragePolicy:
    """How long things are kept and how much one run does (from the settings)."""

    retention_days: int = 365
    rollup_minute_days: int = 730
    rollup_hour_days: int = 3660
    partitions_ahead: int = 3
    rollup_batch: int = 20_000
    rollup_steps: int = 50
    delete_batch: int = 10_000
    delete_steps: int = 20

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> StoragePolicy:
        """The policy the settings give."""
        return cls(
            retention_days=settings.retention_days,
            rollup_minute_days=settings.rollup_minute_days,
            rollup_hour_days=settings.rollup_hour_days,
            partitions_ahead=settings.partitions_ahead,
            rollup_batch=settings.rollup_batch,
            delete_batch=settings.retention_delete_batch,
        )


@dataclass
class MaintenanceReport:
    """What one run did (``skipped``: steps another replica held)."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved: int = 0
    rolled_up: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)


class StorageMaintenance:
    """The storage job's rules (see the module docstring)."""

    def __init__(
        self, transactions: Transactions[MaintenanceRepository], policy: StoragePolicy
    ) -> None:
        self._transactions = transactions
        self.policy = policy

    def raw_horizon_days(self, entries: list[RetentionEntry]) -> int:
        """Days the raw partitions are kept: the longest home retention in force."""
        homes = [e.days for e in entries if not e.device and not e.metric]
        return max([self.policy.retention_days, *homes])

    async def run_once(self, now: datetime | None = None) -> MaintenanceReport:
        """One run of every step (``now``: the time the run takes as now)."""
        now = now or datetime.now(UTC)
        report = MaintenanceReport()
        async with self._transactions() as repo:
            entries = await repo.all_retention()
        raw_days = self.raw_horizon_days(entries)
        await self._partitions(now, raw_days, report)
        await self.roll_up(report)
        await self._retention(now, raw_days, entries, report)
        if report.created or report.dropped or report.moved or report.deleted:
            log.info(
                "storage maintenance",
                extra={
                    "created": report.created,
                    "dropped": report.dropped,
                    "moved": report.moved,
                    "rolled_up": report.rolled_up,
                    "deleted": report.deleted,
                },
            )
        return report

    async def _partitions(self, now: datetime, raw_days: int, report: MaintenanceReport) -> None:
        policy = self.policy
        async with self._transactions() as repo:
            if not await repo.try_lock(_lock_key("partitions")):
                report.skipped.append("partitions")
                return
            for table, days in ((TELEMETRY, raw_days), (ROLLUP_MINUTE, policy.rollup_minute_days)):
                horizon = now - timedelta(days=days)
                existing = set(await repo.partitions(table))
                await repo.delete_from_default(table, month_of(horizon))
                wanted = set(await repo.default_months(table))
                this_month = month_of(now)
                wanted.update(add_months(this_month, n) for n in range(policy.partitions_ahead + 1))
                for month in sorted(wanted):
                    name = table.partition(month)
                    if name in existing or add_months(month, 1) <= horizon:
                        continue
                    report.moved += await repo.attach_month(table, month, add_months(month, 1))
                    report.created.append(name)
                    existing.add(name)
                for name in sorted(existing):
                    start = _partition_month(table, name)
                    if start is not None and add_months(start, 1) <= horizon:
                        await repo.drop_partition(name)
                        report.dropped.append(name)
            await repo.commit()

    async def roll_up(self, report: MaintenanceReport | None = None) -> int:
        """Roll up marked minutes, ``rollup_batch`` per transaction, up to ``rollup_steps``
        transactions; how many minutes."""
        total = 0
        for _ in range(self.policy.rollup_steps):
            async with self._transactions() as repo:
                if not await repo.try_lock(_lock_key("rollups")):
                    if report is not None:
                        report.skipped.append("rollups")
                    break
                done = await repo.roll_up(self.policy.rollup_batch)
                await repo.commit()
            total += done
            if done < self.policy.rollup_batch:
                break
        if report is not None:
            report.rolled_up += total
        return total

    async def _retention(
        self,
        now: datetime,
        raw_days: int,
        entries: list[RetentionEntry],
        report: MaintenanceReport,
    ) -> None:
        policy = self.policy
        homes = {e.home: e.days for e in entries if not e.device and not e.metric}
        budget = policy.delete_steps
        async with self._transactions() as repo:
            if not await repo.try_lock(_lock_key("retention")):
                report.skipped.append("retention")
                return
            for entry in entries:
                days = entry.days
                if entry.device or entry.metric:
                    days = min(days, homes.get(entry.home, policy.retention_days))
                while days < raw_days and budget > 0:
                    budget -= 1
                    deleted = await repo.delete_expired(
                        entry, now - timedelta(days=days), policy.delete_batch
                    )
                    report.deleted += deleted
                    if deleted < policy.delete_batch:
                        break
            while policy.retention_days < raw_days and budget > 0:
                budget -= 1
                deleted = await repo.delete_expired_unset(
                    now - timedelta(days=policy.retention_days), policy.delete_batch
                )
                report.deleted += deleted
                if deleted < policy.delete_batch:
                    break
            hours_before = now - timedelta(days=policy.rollup_hour_days)
            while budget > 0:
                budget -= 1
                if await repo.delete_old_hours(hours_before, policy.delete_batch) < (
                    policy.delete_batch
                ):
                    break
            await repo.commit()
