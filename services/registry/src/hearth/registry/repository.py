"""The registry's queries: homes, memberships, devices (and tombstones) in schema ``registry``.

One :class:`RegistryRepository` per transaction (:class:`~hearth.common.db.Transactions`);
the service decides when to commit. "Live" devices are those without ``deleted_at``;
tombstones only keep their slug taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select

from hearth.common.authorization import Role
from hearth.common.db import Repository
from hearth.registry.models import Device, Home, Membership

__all__ = ["LOGINS_LOCK", "RegistryRepository"]

LOGINS_LOCK = 0x4845_5254_4C47  # "HERTLG"
"""The advisory lock between device login changes (shared) and a reconcile (exclusive)."""


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

    async def list_devices(self, home: str) -> Sequence[Device]:
        """The live devices of ``home``, by slug."""
        result = await self.session.exec(
            select(Device)
            .where(Device.home == home, col(Device.deleted_at).is_(None))
            .order_by(col(Device.slug))
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
