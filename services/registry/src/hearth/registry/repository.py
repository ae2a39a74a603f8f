"""The registry's queries: homes, memberships, devices (and tombstones) in schema ``registry``.

One :class:`RegistryRepository` per transaction (:class:`~hearth.common.db.Transactions`);
the service decides when to commit. "Live" devices are those without ``deleted_at``;
tombstones only keep their slug taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlmodel import col, select

from hearth.common.authorization import Role
from hearth.common.db import Repository
from hearth.registry.models import CommandRow, Device, Home, Membership

__all__ = ["LOGINS_LOCK", "SWEEP_LOCK", "RegistryRepository"]

LOGINS_LOCK = 0x4845_5254_4C47  # "HERTLG"
"""The advisory lock between device login changes (shared) and a reconcile (exclusive)."""
SWEEP_LOCK = 0x4845_5254_5357  # "HERTSW"
"""Held by the one replica sweeping (expiring commands, marking silent devices) this round."""


class RegistryRepository(Repository):
    """The registry's queries over one transaction (:class:`~hearth.common.db.Repository`)."""

    async def lock_logins(self, *, exclusive: bool = False) -> None:
        """Hold the device-logins lock until the transaction ends.

        Every change of a device login holds it shared; a reconcile holds it exclusively,
        so it never sees a login created (or deleted) at the broker but not yet committed.
        """
        await self.lock(LOGINS_LOCK, shared=not exclusive)

    async def get_home(self, slug: str) -> Home | None:
        """The home ``slug``, or ``None``."""
        return await self.session.get(Home, slug)

    async def lock_home(self, slug: str) -> Home | None:
        """The home ``slug`` locked for update (serialises membership changes), or ``None``."""
        result = await self.session.exec(select(Home).where(Home.slug == slug).with_for_update())
        return result.one_or_none()

    async def find_role(self, home: str, user_id: uuid.UUID) -> Role | None:
        """The role of ``user_id`` in ``home``, or ``None`` when not a member (or no such home)."""
        result = await self.session.exec(
            select(Membership.role).where(Membership.home == home, Membership.user_id == user_id)
        )
        role = result.one_or_none()
        return None if role is None else Role(role)

    async def list_homes(
        self, user_id: uuid.UUID, *, every: bool
    ) -> Sequence[tuple[Home, str | None]]:
        """Homes with the user's role in each: the user's homes, or ``every`` home (admins)."""
        joined = (
            select(Home, Membership.role)
            .join(
                Membership,
                (col(Membership.home) == col(Home.slug)) & (col(Membership.user_id) == user_id),
                isouter=every,
            )
            .order_by(col(Home.slug))
        )
        result = await self.session.exec(joined)
        return [(home, role) for home, role in result.all()]

    async def get_membership(self, home: str, user_id: uuid.UUID) -> Membership | None:
        """The membership of ``user_id`` in ``home``, or ``None``."""
        return await self.session.get(Membership, (home, user_id))

    async def list_members(self, home: str) -> Sequence[Membership]:
        """The members of ``home``, by username."""
        result = await self.session.exec(
            select(Membership).where(Membership.home == home).order_by(col(Membership.username))
        )
        return result.all()

    async def count_owners(self, home: str) -> int:
        """How many owners ``home`` has."""
        result = await self.session.exec(
            select(func.count())
            .select_from(Membership)
            .where(Membership.home == home, Membership.role == Role.OWNER.value)
        )
        return int(result.one())

    async def get_device(self, home: str, slug: str) -> Device | None:
        """The live device ``slug`` of ``home``, or ``None`` (also for a tombstone)."""
        device = await self.session.get(Device, (home, slug))
        return device if device is not None and device.deleted_at is None else None

    async def lock_device(self, home: str, slug: str) -> Device | None:
        """The live device ``slug`` of ``home``, locked until the transaction ends, or ``None``."""
        device = await self.session.get(Device, (home, slug), with_for_update=True)
        return device if device is not None and device.deleted_at is None else None

    async def every_live_device(self) -> Sequence[Device]:
        """Every live device of every home (for republishing the capability snapshots)."""
        result = await self.session.exec(
            select(Device)
            .where(col(Device.deleted_at).is_(None))
            .order_by(col(Device.home), col(Device.slug))
        )
        return result.all()

    async def slug_used(self, home: str, slug: str) -> bool:
        """Whether a device of ``home`` has, or once had, ``slug``."""
        return await self.session.get(Device, (home, slug)) is not None

    async def list_devices(
        self,
        home: str,
        *,
        online: bool | None = None,
        area: str | None = None,
        type: str | None = None,
    ) -> Sequence[Device]:
        """The live devices of ``home``, by slug; only those matching the filters given."""
        query = select(Device).where(Device.home == home, col(Device.deleted_at).is_(None))
        if online is not None:
            query = query.where(Device.online == online)
        if area is not None:
            query = query.where(Device.area == area)
        if type is not None:
            query = query.where(Device.type == type)
        result = await self.session.exec(query.order_by(col(Device.slug)))
        return result.all()

    async def try_sweep_lock(self) -> bool:
        """Take :data:`SWEEP_LOCK` until the transaction ends, if no other replica holds it."""
        result = await self.session.exec(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK)))
        return bool(result.one())

    # ------------------------------------------------------------------ presence

    async def set_presence(
        self, home: str, slug: str, *, online: bool, reason: str | None, at: datetime
    ) -> bool:
        """Record a live device's presence; ``True`` when it changed (online or reason)."""
        result = await self.session.exec(
            update(Device)
            .where(
                col(Device.home) == home,
                col(Device.slug) == slug,
                col(Device.deleted_at).is_(None),
                tuple_(col(Device.online), col(Device.presence_reason)).is_distinct_from(
                    tuple_(online, reason)
                ),
            )
            .values(online=online, presence_reason=reason, presence_at=at)
            .returning(col(Device.slug))
        )
        return result.first() is not None

    async def online_devices(self) -> Sequence[tuple[str, str, int, datetime | None]]:
        """``(home, slug, interval, presence_at)`` of every live device marked online."""
        result = await self.session.exec(
            select(Device.home, Device.slug, Device.interval, Device.presence_at).where(
                col(Device.deleted_at).is_(None), col(Device.online).is_(True)
            )
        )
        return result.all()

    # ------------------------------------------------------------------ commands

    async def get_command(self, command_id: uuid.UUID) -> CommandRow | None:
        """The command ``command_id``, or ``None``."""
        return await self.session.get(CommandRow, command_id, populate_existing=True)

    async def list_commands(
        self, home: str, device: str, *, since: datetime | None, limit: int
    ) -> Sequence[CommandRow]:
        """The newest ``limit`` commands of a device issued after ``since``, newest first."""
        query = select(CommandRow).where(CommandRow.home == home, CommandRow.device == device)
        if since is not None:
            query = query.where(col(CommandRow.issued_at) > since)
        result = await self.session.exec(
            query.order_by(col(CommandRow.issued_at).desc(), col(CommandRow.id)).limit(limit)
        )
        return result.all()

    async def answer_command(
        self,
        command_id: uuid.UUID,
        *,
        home: str,
        device: str,
        outcome: str,
        reason: str | None,
        result: Any,
        at: datetime,
    ) -> bool:
        """Record a device's ack for its own pending command; ``False`` when there was none."""
        updated = await self.session.exec(
            update(CommandRow)
            .where(
                col(CommandRow.id) == command_id,
                col(CommandRow.home) == home,
                col(CommandRow.device) == device,
                col(CommandRow.outcome).is_(None),
            )
            .values(outcome=outcome, reason=reason, result=result, answered_at=at)
            .returning(col(CommandRow.id))
        )
        return updated.first() is not None

    async def expire_commands(
        self, now: datetime, *, command_id: uuid.UUID | None = None, limit: int = 500
    ) -> Sequence[uuid.UUID]:
        """Mark pending commands whose ``expires_at`` passed as ``expired`` (one, or a batch)."""
        due = (
            select(CommandRow.id)
            .where(col(CommandRow.outcome).is_(None), col(CommandRow.expires_at) <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if command_id is not None:
            due = due.where(col(CommandRow.id) == command_id)
        updated = await self.session.exec(
            update(CommandRow)
            .where(col(CommandRow.id).in_(due.scalar_subquery()))
            .values(outcome="expired", answered_at=now)
            .returning(col(CommandRow.id))
        )
        return [row[0] for row in updated.all()]

    async def desired_states(self, home: str, device: str) -> Sequence[CommandRow]:
        """The last command of each property of a device (its desired state)."""
        result = await self.session.exec(
            select(CommandRow)
            .where(CommandRow.home == home, CommandRow.device == device)
            .ext(distinct_on(col(CommandRow.property)))
            .order_by(col(CommandRow.property), col(CommandRow.issued_at).desc())
        )
        return result.all()

    async def gateway_users(self, home: str, gateway: str) -> Sequence[str]:
        """Slugs of the live devices of ``home`` that name ``gateway`` as their gateway."""
        result = await self.session.exec(
            select(Device.slug).where(
                Device.home == home, Device.gateway == gateway, col(Device.deleted_at).is_(None)
            )
        )
        return result.all()

    async def list_devices_with_logins(self) -> Sequence[Device]:
        """Every live device of every home that has a broker login (a sealed password)."""
        result = await self.session.exec(
            select(Device)
            .where(col(Device.deleted_at).is_(None), col(Device.password_sealed).is_not(None))
            .order_by(col(Device.home), col(Device.slug))
        )
        return result.all()
