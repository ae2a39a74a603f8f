"""The auth service's queries: users, refresh tokens, signing keys. No business rules here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select

from hearth.auth.models import RefreshToken, SigningKeyRecord, User
from hearth.common.db import Repository

__all__ = ["KEYS_LOCK", "SEED_LOCK", "AuthRepository"]

SEED_LOCK = 0x6865617274680001
"""Advisory lock held while seeding the first user (one replica seeds)."""
KEYS_LOCK = 0x6865617274680002
"""Advisory lock held while creating a signing key (one replica creates it)."""


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
