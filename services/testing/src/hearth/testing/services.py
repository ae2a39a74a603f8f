"""Running Hearth services for any suite's tests: auth, the registry and realtime, for real.

Each service runs its real app under uvicorn on a free port (:func:`hearth.testing.apps.
serve_app`), on fresh databases of the session's PostgreSQL (dropped after) and the
session's broker, wired to each other exactly as in production: the registry verifies
tokens against the running auth's JWKS and asks its user lookup; realtime asks that
registry. Users are created at auth by its seeded admin and log in for real; tokens with
a narrower scope or ``homes`` are minted with auth's own current signing key, so every
service accepts them as auth's.

Fixtures (the root conftest loads this plugin for every suite):

- ``auth`` (module): one :class:`AuthStack` per test module;
- ``make_auth`` (function): a factory of more auth services (fresh database, options);
- ``stack`` (module): a :class:`ServiceStack`, auth and the registry;
- ``realtime`` (module): the realtime app on ``stack`` (token leeway 0, at most 4 rooms
  per socket), a :class:`~hearth.testing.apps.RunningApp`.

``ingest_settings(broker, database_url, tmp, **overrides)`` builds a test ingest replica's
settings (ingest's own tests, the registry's device tests).

Tests create their own users and homes (random names), so they never depend on each
other. Logging changed by the apps is undone after each module (:mod:`hearth.testing.logs`).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app as create_auth_app
from hearth.auth.state import AuthState
from hearth.common.web import service_state
from hearth.ingest.config import IngestSettings
from hearth.ingest.main import create_app as create_ingest_app
from hearth.ingest.migrate import MIGRATIONS as INGEST_MIGRATIONS
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.main import create_app as create_realtime_app
from hearth.registry.config import RegistrySettings
from hearth.registry.main import create_app as create_registry_app
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer, run_async
from hearth.testing.tokens import SigningKey, TokenMinter

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USERNAME",
    "USER_PASSWORD",
    "AuthStack",
    "ServiceStack",
    "User",
    "auth",
    "auth_settings",
    "bearer",
    "ingest_settings",
    "make_auth",
    "realtime",
    "realtime_settings",
    "running_auth",
    "running_stack",
    "stack",
    "start_auth",
    "start_realtime",
]

ADMIN_USERNAME = "root-admin"
ADMIN_PASSWORD = "admin-password-for-tests"  # noqa: S105 (test services' own, never real)
USER_PASSWORD = "a-good-password"  # noqa: S105


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def _minter(app: FastAPI, settings: AuthSettings) -> TokenMinter:
    """Mints tokens with the auth app's own current signing key."""
    key = service_state(app, AuthState).key_ring.signing_key()
    return TokenMinter(
        SigningKey(key.kid, key.private_key),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )


# --------------------------------------------------------------------------- auth


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
        password: str = USER_PASSWORD,
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
        return _minter(self.app, self.settings)


def auth_settings(
    database_url: str, broker: RunningBroker, tmp: Path, **overrides: Any
) -> AuthSettings:
    """Settings for a test auth service: its own database, the test broker, no secrets file."""
    replica = str(overrides.pop("replica", f"test-{secrets.token_hex(4)}"))
    values: dict[str, Any] = {
        "env": "test",
        "secrets_file": tmp / "no-secrets.env",
        "replica": replica,
        "database_url": database_url,
        "mqtt_host": broker.host,
        "mqtt_port": broker.service_port,
        "mqtt_ca_file": broker.service_ca,
        "mqtt_password": broker.service_login("auth", replica).password,
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
    app = create_auth_app(settings)
    running = serve_app(app, wait_path="/readyz")
    stack = AuthStack(app, running, settings, httpx.Client(base_url=running.url, timeout=10.0))
    if settings.admin_password.get_secret_value():
        stack.admin_token = stack.login(
            settings.admin_username, settings.admin_password.get_secret_value()
        )["access_token"]
    return stack


def stop_auth(stack: AuthStack) -> None:
    """Close the client and stop the service."""
    stack.http.close()
    stack.running.stop()


@contextmanager
def running_auth(
    postgres_server: PostgresServer, broker: RunningBroker, folder: Path, **overrides: Any
) -> Iterator[AuthStack]:
    """An auth service on a fresh database (dropped after) and ``broker``."""
    url = postgres_server.create_database()
    stack = start_auth(auth_settings(url, broker, folder, **overrides))
    try:
        yield stack
    finally:
        stop_auth(stack)
        postgres_server.drop_database(url)


@pytest.fixture(scope="module")
def auth(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuthStack]:
    """One auth service for the module: fresh database, session broker, seeded admin."""
    with running_auth(postgres_server, broker, tmp_path_factory.mktemp("auth")) as stack:
        yield stack


@pytest.fixture
def make_auth(
    fresh_database: Callable[[], str], broker: RunningBroker, tmp_path: Path
) -> Iterator[Callable[..., AuthStack]]:
    """Factory: ``make_auth(database_url=None, **settings) -> AuthStack``; stopped after."""
    stacks: list[AuthStack] = []

    def make(database_url: str | None = None, **overrides: Any) -> AuthStack:
        settings = auth_settings(database_url or fresh_database(), broker, tmp_path, **overrides)
        stack = start_auth(settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in reversed(stacks):
        stop_auth(stack)


# --------------------------------------------------------------------------- auth + registry


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
class ServiceStack:
    """A running auth and a running registry wired to it, with HTTP clients."""

    auth: RunningApp
    auth_app: FastAPI
    auth_settings: AuthSettings
    registry: RunningApp
    registry_app: FastAPI
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
        return _minter(self.auth_app, self.auth_settings)

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
) -> ServiceStack:
    """Start auth, then the registry against it; both on kernel-chosen ports."""
    auth_stack = start_auth(auth_settings(auth_database_url, broker, tmp))
    try:
        replica = str(registry_overrides.pop("replica", f"test-{secrets.token_hex(4)}"))
        values: dict[str, Any] = {
            "env": "test",
            "secrets_file": tmp / "no-secrets.env",
            "replica": replica,
            "database_url": registry_database_url,
            "mqtt_host": broker.host,
            "mqtt_port": broker.service_port,
            "mqtt_ca_file": broker.service_ca,
            "mqtt_password": broker.service_login("registry", replica).password,
            "jwks_url": f"{auth_stack.url}/.well-known/jwks.json",
            "auth_url": auth_stack.url,
            "device_key": secrets.token_urlsafe(32),
            "device_broker_host": broker.host,
            "device_broker_port": broker.port,
            # Test modules share the session broker, each registry with its own database: a
            # reconcile would delete the others' device logins. Tests that want it ask for it.
            "reconcile_at_start": False,
            "log_level": "WARNING",
        }
        values.update(registry_overrides)
        registry_app = create_registry_app(RegistrySettings(**values))
        registry = serve_app(registry_app, wait_path="/readyz")
    except BaseException:
        stop_auth(auth_stack)
        raise
    admin_token = auth_stack.admin_token
    me = auth_stack.me(admin_token)
    assert me.status_code == 200, me.text
    return ServiceStack(
        auth=auth_stack.running,
        auth_app=auth_stack.app,
        auth_settings=auth_stack.settings,
        registry=registry,
        registry_app=registry_app,
        auth_http=auth_stack.http,
        http=httpx.Client(base_url=registry.url, timeout=10.0),
        admin=User(me.json()["id"], ADMIN_USERNAME, admin_token),
    )


def stop_stack(stack: ServiceStack) -> None:
    """Stop the registry, then auth."""
    stack.http.close()
    stack.auth_http.close()
    stack.registry.stop()
    stack.auth.stop()


@contextmanager
def running_stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    folder: Path,
    **registry_overrides: Any,
) -> Iterator[ServiceStack]:
    """Auth and the registry on fresh databases (dropped after) and ``broker``."""
    auth_url = postgres_server.create_database()
    registry_url = postgres_server.create_database()
    try:
        running = start_stack(auth_url, registry_url, broker, folder, **registry_overrides)
        try:
            yield running
        finally:
            stop_stack(running)
    finally:
        postgres_server.drop_database(auth_url)
        postgres_server.drop_database(registry_url)


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceStack]:
    """Auth and the registry for the module: fresh databases, the session's broker."""
    with running_stack(postgres_server, broker, tmp_path_factory.mktemp("stack")) as running:
        yield running


# --------------------------------------------------------------------------- ingest


def ingest_settings(
    broker: RunningBroker, database_url: str, tmp: Path, **overrides: Any
) -> IngestSettings:
    """Settings of a test ingest replica: its database, ``broker`` with its own replica's
    login (``replica`` in ``overrides``, else a random one), no secrets file; ``overrides``
    add the rest (``jwks_url``, ``registry_url``...)."""
    replica = str(overrides.pop("replica", f"test-{secrets.token_hex(4)}"))
    values: dict[str, Any] = {
        "env": "test",
        "secrets_file": tmp / "no-secrets.env",
        "database_url": database_url,
        "replica": replica,
        "mqtt_host": broker.host,
        "mqtt_port": broker.service_port,
        "mqtt_ca_file": broker.service_ca,
        "mqtt_password": broker.service_login("ingest", replica).password,
    }
    values.update(overrides)
    return IngestSettings(**values)


@dataclass
class RunningIngest:
    """An ingest replica serving the history API, and its database."""

    app: RunningApp
    database_url: str


@contextmanager
def running_ingest(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    stack: ServiceStack,
    folder: Path,
    **overrides: Any,
) -> Iterator[RunningIngest]:
    """Ingest on a fresh, migrated database (dropped after), on ``broker``, verifying
    ``stack``'s tokens and asking its registry (the history API's authorisation)."""
    url = postgres_server.create_database()
    try:
        run_async(INGEST_MIGRATIONS.upgrade(url))
        values: dict[str, Any] = {
            "jwks_url": f"{stack.auth.url}/.well-known/jwks.json",
            "registry_url": stack.registry.url,
            "log_level": "WARNING",
        }
        values.update(overrides)
        settings = ingest_settings(broker, url, folder, **values)
        with serve_app(create_ingest_app(settings), wait_path="/readyz") as app:
            yield RunningIngest(app, url)
    finally:
        postgres_server.drop_database(url)


# --------------------------------------------------------------------------- realtime


def realtime_settings(
    stack: ServiceStack, broker: RunningBroker, tmp: Path, **overrides: Any
) -> RealtimeSettings:
    """Settings of a realtime app on ``broker`` asking ``stack``'s registry."""
    replica = str(overrides.pop("replica", f"test-{secrets.token_hex(4)}"))
    values: dict[str, Any] = {
        "env": "test",
        "secrets_file": tmp / "no-secrets.env",
        "replica": replica,
        "mqtt_host": broker.host,
        "mqtt_port": broker.service_port,
        "mqtt_ca_file": broker.service_ca,
        "mqtt_password": broker.service_login("realtime", replica).password,
        "jwks_url": f"{stack.auth.url}/.well-known/jwks.json",
        "registry_url": stack.registry.url,
        "token_leeway": 0,
        "max_rooms_per_socket": 4,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return RealtimeSettings(**values)


def start_realtime(settings: RealtimeSettings) -> RunningApp:
    """Serve a realtime app built from ``settings``."""
    return serve_app(
        create_realtime_app(settings), wait_path="/readyz", **settings.server_options()
    )


@pytest.fixture(scope="module")
def realtime(
    stack: ServiceStack, broker: RunningBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """The realtime service for the module (token leeway 0, at most 4 rooms per socket)."""
    with start_realtime(
        realtime_settings(stack, broker, tmp_path_factory.mktemp("realtime"))
    ) as running:
        yield running
