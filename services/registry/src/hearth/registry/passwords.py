"""Device passwords: generated at random, kept sealed with the key from the secrets file.

A password is 32 random bytes, URL-safe base64 (43 characters: no quoting in C, Python,
shell or dotenv). It is sealed with :class:`hearth.common.sealing.SecretBox` under
``HEARTH_REGISTRY_DEVICE_KEY``, bound to the device's login name, so a sealed value copied
to another device's row does not open.
"""

from __future__ import annotations

import secrets

from hearth.common.logins import device_username
from hearth.common.sealing import SecretBox

__all__ = ["DevicePasswords"]

_INFO = b"hearth-registry device passwords v1"


class DevicePasswords:
    """Makes, seals and opens device passwords."""

    def __init__(self, key: str) -> None:
        self._box = SecretBox(key, info=_INFO, setting="HEARTH_REGISTRY_DEVICE_KEY")

    def __repr__(self) -> str:
        return "DevicePasswords(<key>)"

    @staticmethod
    def generate() -> str:
        """A fresh password."""
        return secrets.token_urlsafe(32)

    def seal(self, home: str, device: str, password: str) -> bytes:
        """The password sealed for this device's row."""
        return self._box.seal(device_username(home, device), password.encode("utf-8"))

    def open(self, home: str, device: str, sealed: bytes) -> str:
        """The password :meth:`seal` sealed; :class:`~hearth.common.sealing.Unsealable` if not."""
        return self._box.open(device_username(home, device), sealed).decode("utf-8")
