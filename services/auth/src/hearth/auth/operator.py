"""Auth's operator commands, run on the host with the service's settings and secrets file.

``hearth-auth rotate-keys`` adds a new signing key now (like ``POST /auth/keys/rotate``).
``hearth-auth reset-admin`` reads a new password on stdin and resets the seeded admin
(``HEARTH_AUTH_ADMIN_USERNAME``): it exists, is enabled, is an admin and has that
password; its earlier tokens are revoked, and its new mark is published on the bus so
every running service (auth's replicas included) stops refusing it. ``hearth admin
reset`` (hearth.platform) runs it with a generated password and keeps that password in
the secrets file. Both build the app's parts with ``create_app`` (nothing is served).
"""

from __future__ import annotations

import sys

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app
from hearth.auth.migrate import migrate
from hearth.auth.state import AuthState
from hearth.common.errors import ConfigError
from hearth.common.web import service_state

__all__ = ["MARK_PUBLISH_WAIT", "reset_admin", "rotate_keys"]

MARK_PUBLISH_WAIT = 15.0
"""Seconds ``reset-admin`` waits for the broker to take the admin's new mark."""


def _state(settings: AuthSettings | None) -> AuthState:
    return service_state(create_app(settings or AuthSettings.load()), AuthState)


async def rotate_keys(settings: AuthSettings | None = None) -> str:
    """Add a successor signing key; which, and when it starts signing."""
    state = _state(settings)
    try:
        await migrate(state.settings)
        await state.key_store.ensure()
        rotated = await state.key_store.rotate()
    finally:
        await state.engine.dispose()
    return f"new signing key {rotated.kid}, signing from {rotated.activates_at:%Y-%m-%d %H:%M:%S}Z"


async def reset_admin(settings: AuthSettings | None = None, password: str | None = None) -> str:
    """Reset the seeded admin with ``password`` (default: the first line of stdin)."""
    state = _state(settings)
    new_password = sys.stdin.readline().rstrip("\n") if password is None else password
    if len(new_password) < 8:
        raise ConfigError("reset-admin needs a new password of 8+ characters on stdin")
    username = state.settings.admin_username
    try:
        await migrate(state.settings)
        async with state.mqtt:
            await state.mqtt.wait_connected(MARK_PUBLISH_WAIT)
            user = await state.service.reset_admin(username, new_password)
            published = await state.marks.flush_all(MARK_PUBLISH_WAIT)
    finally:
        await state.engine.dispose()
    note = (
        "its mark is on the bus"
        if published
        else "its mark could not be published (broker down): restart the services"
    )
    return f"admin {user.username} is enabled with the new password; {note}"
