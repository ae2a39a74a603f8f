"""AuthState: every object the auth app is made of, built by ``create_app``.

The lifespan (:func:`hearth.auth.main.lifespan`) only starts and stops them; routes read
them through ``StateDep`` (:mod:`hearth.auth.api.deps`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from hearth.auth.api_keys import ApiKeyService
from hearth.auth.config import AuthSettings
from hearth.auth.keys import KeyRing
from hearth.auth.keystore import KeyStore
from hearth.auth.login_guard import LoginGuard
from hearth.auth.marks import MarkPublisher
from hearth.auth.service import AuthService
from hearth.auth.service_clients import ServiceClients
from hearth.common.mqtt import MqttConnection
from hearth.common.tokens import TokenVerifier

__all__ = ["AuthState"]


@dataclass(frozen=True, eq=False)
class AuthState:
    """The auth service's parts: its database, keys, broker connection and rules."""

    settings: AuthSettings
    engine: AsyncEngine
    key_ring: KeyRing
    key_store: KeyStore
    verifier: TokenVerifier
    mqtt: MqttConnection
    marks: MarkPublisher
    guard: LoginGuard
    service: AuthService
    api_keys: ApiKeyService
    service_clients: ServiceClients
