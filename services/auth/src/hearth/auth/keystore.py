"""KeyStore: the signing keys in the database, kept in step with this replica's KeyRing.

At start :meth:`KeyStore.ensure` creates the first key when there is none (under an
advisory lock, so two replicas starting together make one) and loads them all.
:meth:`KeyStore.rotate_if_due` adds a successor once the newest key is older than the
rotation interval; the successor is published at once and signs only after
``publish_delay``, so every verifier can fetch it first (docs/decisions.md).
:meth:`KeyStore.rotate` does the same at once (``POST /auth/keys/rotate``,
``hearth-auth rotate-keys``). Replicas pick up keys made by others in :meth:`KeyStore.reload`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from hearth.auth.keys import KeyCipher, KeyRing, new_key_record
from hearth.auth.models import RotatedKey
from hearth.auth.repository import KEYS_LOCK, AuthRepository
from hearth.common.clock import utc_now
from hearth.common.db import Transactions

__all__ = ["KeyStore"]

log = logging.getLogger(__name__)


class KeyStore:
    """Creates, rotates and loads the signing keys (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[AuthRepository],
        cipher: KeyCipher,
        ring: KeyRing,
        *,
        rotation_interval: timedelta,
        publish_delay: timedelta,
    ) -> None:
        self._transactions = transactions
        self._cipher = cipher
        self.ring = ring
        self._rotation_interval = rotation_interval
        self._publish_delay = publish_delay

    async def reload(self) -> None:
        """Load every stored key into the ring."""
        async with self._transactions() as repo:
            records = await repo.signing_keys()
        self.ring.load(records)

    async def ensure(self) -> None:
        """Make the first key if there is none (it signs at once), then load all."""
        async with self._transactions() as repo:
            await repo.lock(KEYS_LOCK)
            if not await repo.signing_keys():
                record = new_key_record(self._cipher)
                repo.add(record)
                log.info("created the first signing key", extra={"kid": record.kid})
            await repo.commit()
        await self.reload()
        await self.rotate_if_due()

    async def rotate_if_due(self) -> bool:
        """Add a successor key when the newest is older than the interval; whether one was."""
        return await self._rotate(due_only=True) is not None

    async def rotate(self) -> RotatedKey:
        """Add a successor key now (an admin's or an operator's rotation)."""
        rotated = await self._rotate(due_only=False)
        assert rotated is not None
        return rotated

    async def _rotate(self, *, due_only: bool) -> RotatedKey | None:
        async with self._transactions() as repo:
            await repo.lock(KEYS_LOCK)
            records = await repo.signing_keys()
            now = utc_now()
            newest = max((record.created_at for record in records), default=None)
            if due_only and newest is not None and now - newest < self._rotation_interval:
                return None
            record = new_key_record(self._cipher, activates_at=now + self._publish_delay)
            repo.add(record)
            await repo.commit()
        log.info("created a new signing key", extra={"kid": record.kid})
        await self.reload()
        return RotatedKey(kid=record.kid, activates_at=record.activates_at)
