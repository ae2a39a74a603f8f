"""The auth service's queries: users, refresh tokens, signing keys. No business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select

from hearth.auth.models import (
    ApiKey,
    KnownAddress,
    LoginThrottle,
    RefreshToken,
    SigningKeyRecord,
    User,
)
from hearth.common.clock import utc_now
from hearth.common.db import Repository

__all__ = ["ADMINS_LOCK", "KEYS_LOCK", "SEED_LOCK", "AuthRepository"]

SEED_LOCK = 0x6865617274680001
"""Advisory lock held while seeding the first user (one replica seeds)."""
KEYS_LOCK = 0x6865617274680002
"""Advisory lock held while creating a signing key (one replica creates it)."""
ADMINS_LOCK = 0x6865617274680003
"""Advisory lock held while an admin is disabled or demoted (the last-admin rule)."""


class AuthRepository(Repository):
    """Auth's queries over one transaction (:class:`~hearth.common.db.Repository`)."""

    # ------------------------------------------------------------------ users

    async def count_users(self) -> int:
        """How many users exist."""
        result = await self.session.exec(select(func.count()).select_from(User))
        return int(result.one())

    async def get_user(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        """The user with ``user_id``, locked for update if asked."""
        query = select(User).where(User.id == user_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def user_by_username(self, username: str) -> User | None:
        """The user with exactly this username."""
        return (await self.session.exec(select(User).where(User.username == username))).first()

    async def existing_usernames(self, usernames: Sequence[str]) -> list[str]:
        """Which of ``usernames`` are taken."""
        query = select(User.username).where(col(User.username).in_(list(usernames)))
        return list((await self.session.exec(query)).all())

    async def list_users(self, *, offset: int, limit: int) -> list[User]:
        """Users by username."""
        query = select(User).order_by(col(User.username)).offset(offset).limit(limit)
        return list((await self.session.exec(query)).all())

    async def marked_users(self) -> list[User]:
        """Users with a revocation mark (``not_before`` set or disabled)."""
        query = select(User).where((col(User.not_before_ms) > 0) | col(User.disabled))
        return list((await self.session.exec(query)).all())

    async def lock_user(self, user_id: uuid.UUID) -> None:
        """Lock the user's row until the transaction ends (serialises per-user limits)."""
        await self.get_user(user_id, for_update=True)

    async def count_enabled_admins(self) -> int:
        """How many admins are not disabled."""
        query = (
            select(func.count()).select_from(User).where(col(User.is_admin), ~col(User.disabled))
        )
        return int((await self.session.exec(query)).one())

    # ------------------------------------------------------------------ login throttle

    async def reserve_try(
        self, key: str, *, now: float, interval: float, tolerance: float
    ) -> float | None:
        """Admit one try at bucket ``key`` (atomically): ``None``, else the bucket's ``tat``."""
        ahead = func.greatest(col(LoginThrottle.tat), now)
        statement = (
            pg_insert(LoginThrottle)
            .values(key=key, tat=now + interval)
            .on_conflict_do_update(
                index_elements=[col(LoginThrottle.key)],
                set_={"tat": ahead + interval},
                where=ahead - now <= tolerance,
            )
            .returning(col(LoginThrottle.tat))
        )
        admitted = (await self.session.exec(statement)).first()
        if admitted is not None:
            return None
        row = await self.session.get(LoginThrottle, key)
        return now if row is None else row.tat

    async def refund_try(self, key: str, interval: float) -> None:
        """Give back one admitted try (it succeeded, or was refused elsewhere)."""
        statement = (
            update(LoginThrottle)
            .where(col(LoginThrottle.key) == key)
            .values(tat=LoginThrottle.tat - interval)
        )
        await self.session.exec(statement)

    async def prune_throttle(self, now: float) -> int:
        """Delete buckets that have fully drained; how many."""
        statement = delete(LoginThrottle).where(col(LoginThrottle.tat) < now)
        result = await self.session.exec(statement)
        return int(result.rowcount)

    async def is_known_address(self, user_id: uuid.UUID, address: str) -> bool:
        """Whether ``address`` logged in to the user's account before."""
        return await self.session.get(KnownAddress, (user_id, address)) is not None

    async def remember_address(self, user_id: uuid.UUID, address: str, keep: int) -> None:
        """Record a successful login from ``address``; keep the user's ``keep`` newest."""
        record = await self.session.get(KnownAddress, (user_id, address))
        record = record or KnownAddress(user_id=user_id, address=address)
        record.last_login_at = utc_now()
        self.session.add(record)
        await self.session.flush()
        newest = (
            select(KnownAddress.address)
            .where(col(KnownAddress.user_id) == user_id)
            .order_by(col(KnownAddress.last_login_at).desc())
            .limit(keep)
        )
        statement = (
            delete(KnownAddress)
            .where(col(KnownAddress.user_id) == user_id)
            .where(col(KnownAddress.address).not_in(newest.scalar_subquery()))
        )
        await self.session.exec(statement)

    # ------------------------------------------------------------------ API keys

    async def get_api_key(self, key_id: uuid.UUID, *, for_update: bool = False) -> ApiKey | None:
        """The API key with ``key_id``."""
        query = select(ApiKey).where(ApiKey.id == key_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.exec(query)).first()

    async def api_keys_of(self, user_id: uuid.UUID) -> list[ApiKey]:
        """A user's API keys, newest first."""
        query = (
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(col(ApiKey.created_at).desc())
        )
        return list((await self.session.exec(query)).all())

    async def count_api_keys(self, user_id: uuid.UUID) -> int:
        """How many live (not revoked) API keys a user has."""
        query = (
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
        )
        return int((await self.session.exec(query)).one())

    # ------------------------------------------------------------------ refresh tokens

    async def refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, locked for update."""
        query = select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        return (await self.session.exec(query)).first()

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        """Revoke every live token of a family; how many were revoked."""
        statement = (
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == family_id)
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )
        result = await self.session.exec(statement)
        return int(result.rowcount)

    async def revoke_user_tokens(self, user_id: uuid.UUID, at: datetime) -> int:
        """Revoke every live refresh token of a user; how many were revoked."""
        statement = (
            update(RefreshToken)
            .where(col(RefreshToken.user_id) == user_id)
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )
        result = await self.session.exec(statement)
        return int(result.rowcount)

    # ------------------------------------------------------------------ signing keys

    async def signing_keys(self) -> list[SigningKeyRecord]:
        """Every stored signing key, oldest first."""
        query = select(SigningKeyRecord).order_by(col(SigningKeyRecord.created_at))
        return list((await self.session.exec(query)).all())
