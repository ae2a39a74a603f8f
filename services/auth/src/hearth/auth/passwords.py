"""Password hashing with pwdlib's Argon2id (passlib is unmaintained and breaks on bcrypt 5)."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

__all__ = ["PasswordHasher"]


class PasswordHasher:
    """Hashes and verifies passwords off the event loop (Argon2id is deliberately slow).

    A verification against a user that does not exist still spends the time of a
    real one (:meth:`verify` with ``None``), so response times do not tell which
    usernames exist.
    """

    def __init__(self, hasher: Argon2Hasher | None = None) -> None:
        self._hash = PasswordHash((hasher or Argon2Hasher(),))
        self._dummy = self._hash.hash("hearth-no-such-user")

    async def hash(self, password: str) -> str:
        """The Argon2id hash of ``password`` (a PHC string with its own salt)."""
        return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether ``password`` matches ``password_hash``; ``None`` is never matched."""
        target = self._dummy if password_hash is None else password_hash
        matched = await asyncio.to_thread(self._hash.verify, password, target)
        return matched and password_hash is not None
