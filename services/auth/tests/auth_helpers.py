"""Helpers of the auth tests: an auth service on a free port and ways to talk to it."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app
from hearth.auth.state import AuthState
from hearth.common.web import service_state
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import RunningBroker
from hearth.testing.tokens import SigningKey, TokenMinter

ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-password-for-tests"


@dataclass
class AuthStack:
    """A running auth service and helpers to talk to it."""

    app: FastAPI
    running: RunningApp
    settings: AuthSettings
    http: httpx.Client
    admin_token: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return self.running.url

    def login(self, username: str, password: str) -> dict[str, Any]:
        """The token response of a password login (asserts it succeeded)."""
        response = self.http.post("/auth/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def create_user(
        self,
        username: str | None = None,
        password: str = "a-good-password",  # noqa: S107 (a test password)
        **fields: Any,
    ) -> dict[str, Any]:
        """An admin creates a user; the created user (with its password for logging in)."""
        name = username or f"user-{uuid.uuid4().hex[:10]}"
        response = self.http.post(
            "/auth/users",
            json={"username": name, "password": password, **fields},
            headers=bearer(self.admin_token),
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        user["password"] = password
        return user

    def me(self, token: str) -> httpx.Response:
        """GET /auth/users/me with ``token``."""
        return self.http.get("/auth/users/me", headers=bearer(token))

    def minter(self) -> TokenMinter:
        """Mints tokens with the service's own current signing key (for the token matrix)."""
        key = service_state(self.app, AuthState).key_ring.signing_key()
        return TokenMinter(
            SigningKey(key.kid, key.private_key),
            issuer=self.settings.token_issuer,
            audience=self.settings.token_audience,
        )


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def auth_settings(
    database_url: str, broker: RunningBroker, tmp: Path, **overrides: Any
) -> AuthSettings:
    """Settings for a test auth service: its own database, the test broker, no secrets file."""
    values: dict[str, Any] = {
        "env": "test",
        "secrets_file": tmp / "no-secrets.env",
        "replica": f"test-{secrets.token_hex(4)}",
        "database_url": database_url,
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "mqtt_password": broker.service_login("auth").password,
        "key_encryption_key": secrets.token_urlsafe(32),
        "admin_username": ADMIN_USERNAME,
        "admin_password": ADMIN_PASSWORD,
        "log_level": "WARNING",
        "password_time_cost": 1,  # fast hashing: the tests log in a lot
        "password_memory_kib": 1024,
    }
    values.update(overrides)
    return AuthSettings(**values)


def start_auth(settings: AuthSettings) -> AuthStack:
    """Serve an auth app built from ``settings``; log in as the seeded admin if there is one."""
    app = create_app(settings)
    running = serve_app(app, wait_path="/readyz")
    stack = AuthStack(app, running, settings, httpx.Client(base_url=running.url, timeout=10.0))
    if settings.admin_password.get_secret_value():
        stack.admin_token = stack.login(
            settings.admin_username, settings.admin_password.get_secret_value()
        )["access_token"]
    return stack


def stop_auth(stack: AuthStack) -> None:
    stack.http.close()
    stack.running.stop()
