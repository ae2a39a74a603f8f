"""SecretBox: seal small secrets kept in a database with a key from the secrets file.

AES-256-GCM under a key derived (HKDF-SHA256) from a secret setting, with a per-purpose
``info`` label (so one secret never opens another purpose's data) and associated data
naming the row (so a sealed value copied to another row does not open). Sealed bytes are
``nonce (12) || ciphertext || tag (16)``.

Used where a secret must be *recovered*, not only checked: auth's token signing keys, the
registry's device passwords (dynsec 2.0.11 takes plain-text passwords only, and the broker
must be rebuildable from the registry's records).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hearth.common.errors import ConfigError

__all__ = ["MIN_SECRET_LENGTH", "SecretBox", "Unsealable"]

MIN_SECRET_LENGTH = 16
_NONCE_BYTES = 12


class Unsealable(Exception):
    """Sealed bytes that do not open: another key, another row, or tampered."""


class SecretBox:
    """Seals and opens bytes with AES-256-GCM (key derived from ``secret`` and ``info``).

    ``setting`` names the environment variable the secret comes from, for the error when
    it is missing or short (never the value).
    """

    def __init__(self, secret: str, *, info: bytes, setting: str) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"{setting} must be set ({MIN_SECRET_LENGTH}+ characters)")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
            secret.encode("utf-8")
        )
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<secret>)"

    def seal(self, associated: str, plain: bytes) -> bytes:
        """``nonce || ciphertext`` of ``plain``, bound to ``associated`` (the row's name)."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plain, associated.encode("utf-8"))

    def open(self, associated: str, sealed: bytes) -> bytes:
        """What :meth:`seal` sealed for ``associated``; :class:`Unsealable` if it does not open."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, associated.encode("utf-8"))
        except InvalidTag:
            raise Unsealable(f"sealed value of {associated} does not open") from None
