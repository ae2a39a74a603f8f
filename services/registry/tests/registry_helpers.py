"""Helpers of the registry tests: the real auth and the real registry on free ports.

The registry verifies tokens against the running auth's JWKS and asks the running
auth's user lookup, exactly as in production. Users are created at auth by its seeded
admin and log in for real; API-key-like tokens (``homes``, a narrower ``scope``) are
minted with auth's own current signing key, so the registry accepts them as auth's.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app as create_auth_app
from hearth.auth.state import AuthState
from hearth.common.web import service_state
from hearth.registry.config import RegistrySettings
from hearth.registry.main import create_app as create_registry_app
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer
from hearth.testing.tokens import SigningKey, TokenMinter

ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "a-good-password"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class User:
    """A user that exists at auth and is logged in."""

    id: str
    username: str
    token: str = field(repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Stack:
    """A running auth and a running registry wired to it, with HTTP clients."""

    auth: RunningApp
    auth_app: Any
    auth_settings: AuthSettings
    registry: RunningApp
    registry_app: Any
    auth_http: httpx.Client
    http: httpx.Client
    admin: User

    def create_user(self, prefix: str = "user") -> User:
        """Create a user at auth (as its admin) and log them in."""
        username = f"{prefix}-{uuid.uuid4().hex[:8]}"
        created = self.auth_http.post(
            "/auth/users",
            json={"username": username, "password": USER_PASSWORD},
            headers=self.admin.headers,
        )
        assert created.status_code == 201, created.text
        return User(created.json()["id"], username, self.login(username, USER_PASSWORD))

    def login(self, username: str, password: str = USER_PASSWORD) -> str:
        """A fresh access token of ``username`` from auth's password grant."""
        response = self.auth_http.post(
            "/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def minter(self) -> TokenMinter:
        """Mints tokens with auth's current signing key (API-key-like tokens for tests)."""
        key = service_state(self.auth_app, AuthState).key_ring.signing_key()
        return TokenMinter(
            SigningKey(key.kid, key.private_key),
            issuer=self.auth_settings.token_issuer,
            audience=self.auth_settings.token_audience,
        )

    # -- registry shortcuts that assert success -------------------------------------------

    def create_home(self, owner: User, slug: str | None = None, **fields: Any) -> dict[str, Any]:
        """``owner`` creates a home (a random slug unless given)."""
        body = {"slug": slug or f"home-{uuid.uuid4().hex[:8]}", "name": "A home", **fields}
        response = self.http.post("/registry/homes", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        home: dict[str, Any] = response.json()
        return home

    def add_member(self, owner: User, home: str, user: User, role: str) -> dict[str, Any]:
        """``owner`` adds ``user`` to ``home`` with ``role``."""
        response = self.http.post(
            f"/registry/homes/{home}/members",
            json={"username": user.username, "role": role},
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        member: dict[str, Any] = response.json()
        return member

    def create_device(self, owner: User, home: str, slug: str, **fields: Any) -> dict[str, Any]:
        """``owner`` adds device ``slug`` to ``home`` (type ``generic`` unless given)."""
        body = {"slug": slug, "name": slug.replace("-", " ").title(), **fields}
        response = self.http.post(
            f"/registry/homes/{home}/devices", json=body, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        device: dict[str, Any] = response.json()
        return device


def start_stack(
    auth_database_url: str,
    registry_database_url: str,
    broker: RunningBroker,
    tmp: Path,
    **registry_overrides: Any,
) -> Stack:
    """Start auth, then the registry against it; both on kernel-chosen ports."""
    auth_settings = AuthSettings(
        env="test",
        secrets_file=tmp / "no-secrets.env",
        replica=f"test-{secrets.token_hex(4)}",
        database_url=auth_database_url,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_password=broker.service_login("auth").password,
        key_encryption_key=secrets.token_urlsafe(32),
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        log_level="WARNING",
        password_time_cost=1,
        password_memory_kib=1024,
    )
    auth_app = create_auth_app(auth_settings)
    auth = serve_app(auth_app, wait_path="/readyz")
    auth_http = httpx.Client(base_url=auth.url, timeout=10.0)
    try:
        values: dict[str, Any] = {
            "env": "test",
            "secrets_file": tmp / "no-secrets.env",
            "replica": f"test-{secrets.token_hex(4)}",
            "database_url": registry_database_url,
            "mqtt_host": broker.host,
            "mqtt_port": broker.port,
            "mqtt_password": broker.service_login("registry").password,
            "jwks_url": f"{auth.url}/.well-known/jwks.json",
            "auth_url": auth.url,
            "log_level": "WARNING",
        }
        values.update(registry_overrides)
        registry_app = create_registry_app(RegistrySettings(**values))
        registry = serve_app(registry_app, wait_path="/readyz")
    except BaseException:
        auth_http.close()
        auth.stop()
        raise
    stack = Stack(
        auth=auth,
        auth_app=auth_app,
        auth_settings=auth_settings,
        registry=registry,
        registry_app=registry_app,
        auth_http=auth_http,
        http=httpx.Client(base_url=registry.url, timeout=10.0),
        admin=User("", ADMIN_USERNAME, ""),
    )
    token = stack.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    me = auth_http.get("/auth/users/me", headers=bearer(token))
    stack.admin = User(me.json()["id"], ADMIN_USERNAME, token)
    return stack


def stop_stack(stack: Stack) -> None:
    """Stop the registry, then auth."""
    stack.http.close()
    stack.auth_http.close()
    stack.registry.stop()
    stack.auth.stop()


@contextmanager
def running_stack(
    postgres_server: PostgresServer, broker: RunningBroker, folder: Path
) -> Iterator[Stack]:
    """Auth and the registry on fresh databases (dropped after) and ``broker``, for a module."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    auth_url = postgres_server.create_database()
    registry_url = postgres_server.create_database()
    running = start_stack(auth_url, registry_url, broker, folder)
    try:
        yield running
    finally:
        stop_stack(running)
        postgres_server.drop_database(auth_url)
        postgres_server.drop_database(registry_url)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
