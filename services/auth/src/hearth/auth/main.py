"""The auth service's composition root: ``create_app(settings=None)`` and its lifespan.

``create_app`` builds every object (:class:`~hearth.auth.state.AuthState`) and nothing
connects yet. The lifespan starts them, in order: wait for the database and migrate
(advisory-locked, so every replica may), create or load the signing keys, seed the first
admin, load the users' marks, connect to the broker (not waited for: ``/readyz`` reports
it) and follow the marks on the bus (``hearth-sys/auth/users/+``: another replica's, or
``hearth admin reset``'s); then background tasks reload the keys (keys made by another
replica), rotate them when due, retry publishing revocation marks and prune drained
login throttle buckets. Stopping cancels them, disconnects and closes the database pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import aiomqtt
from fastapi import FastAPI
from pwdlib.hashers.argon2 import Argon2Hasher

from hearth.auth import openapi_examples
from hearth.auth.api import api_keys as api_keys_api
from hearth.auth.api import keys as keys_api
from hearth.auth.api import tokens as tokens_api
from hearth.auth.api import users as users_api
from hearth.auth.api_keys import ApiKeyService
from hearth.auth.config import AuthSettings
from hearth.auth.issuer import TokenIssuer
from hearth.auth.keys import KeyCipher, KeyRing
from hearth.auth.keystore import KeyStore
from hearth.auth.local_jwks import LOCAL_JWKS_URL, LocalJwksTransport
from hearth.auth.login_guard import LoginGuard
from hearth.auth.marks import MarkPublisher
from hearth.auth.migrate import MIGRATIONS, migrate
from hearth.auth.passwords import PasswordHasher
from hearth.auth.repository import AuthRepository
from hearth.auth.service import AuthService, Seed
from hearth.auth.service_clients import ServiceClients
from hearth.auth.state import AuthState
from hearth.auth.throttle import Rate
from hearth.common.db import Transactions, create_engine, database_check, session_factory
from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import USER_MARKS_FILTER, JwksClient, TokenVerifier
from hearth.common.web import create_service_app, service_state

__all__ = ["KEY_RELOAD_INTERVAL", "THROTTLE_PRUNE_INTERVAL", "create_app", "lifespan"]

log = logging.getLogger(__name__)

KEY_RELOAD_INTERVAL = 5.0
"""Seconds between reloads of the signing keys from the database (keys of other replicas)."""
THROTTLE_PRUNE_INTERVAL = 600.0
"""Seconds between deletions of drained login throttle buckets."""


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """The auth service app (settings from the environment unless given)."""
    settings = settings or AuthSettings.load()
    engine = create_engine(
        settings.require_database_url(),
        schema=MIGRATIONS.schema,
        application_name=settings.client_id,
    )
    transactions = Transactions(session_factory(engine), AuthRepository)
    cipher = KeyCipher(settings.key_encryption_key.get_secret_value())
    ring = KeyRing(cipher, retention=timedelta(seconds=settings.key_retention))
    verifier = TokenVerifier(
        # In memory: a new kid (a rotation) is picked up at once, without rate limit.
        JwksClient(LOCAL_JWKS_URL, transport=LocalJwksTransport(ring), min_refresh_interval=0.0),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway,
    )
    issuer = TokenIssuer(
        ring,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl=settings.access_token_ttl,
    )

    def on_user_mark(message: aiomqtt.Message) -> None:
        verifier.marks.handle_message(str(message.topic), payload_bytes(message))

    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)
    mqtt = MqttConnection(MqttConfig.from_settings(settings), router=router)
    marks = MarkPublisher(mqtt, verifier.marks)
    guard = LoginGuard(
        transactions,
        per_address=Rate(settings.login_address_limit, settings.login_address_window),
        per_account=Rate(settings.login_account_limit, settings.login_account_window),
    )
    state = AuthState(
        settings=settings,
        engine=engine,
        key_ring=ring,
        key_store=KeyStore(
            transactions,
            cipher,
            ring,
            rotation_interval=timedelta(seconds=settings.key_rotation_interval),
            publish_delay=timedelta(seconds=settings.key_publish_delay),
        ),
        verifier=verifier,
        mqtt=mqtt,
        marks=marks,
        guard=guard,
        service=AuthService(
            transactions,
            hasher=PasswordHasher(
                Argon2Hasher(
                    time_cost=settings.password_time_cost,
                    memory_cost=settings.password_memory_kib,
                )
            ),
            issuer=issuer,
            marks=marks,
            guard=guard,
            refresh_ttl=settings.refresh_token_ttl,
            open_signup=settings.open_signup,
        ),
        api_keys=ApiKeyService(transactions, issuer, max_per_user=settings.api_keys_per_user),
        service_clients=ServiceClients(settings.service_client_secrets(), issuer),
    )
    app = create_service_app(
        settings,
        title="Hearth auth",
        description="Users, access tokens (EdDSA JWTs), refresh tokens, API keys, service "
        "identities, login throttling, revocation marks, JWKS.",
        lifespan=lifespan,
        token_verifier=verifier,
        state=state,
        readiness_checks={"database": database_check(engine), "broker": mqtt.readiness_check},
        openapi_tags=openapi_examples.TAGS,
        openapi_examples=openapi_examples.EXAMPLES,
    )
    app.include_router(tokens_api.router)
    app.include_router(users_api.router)
    app.include_router(keys_api.router)
    app.include_router(api_keys_api.router)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start what ``create_app`` built (see the module docstring), stop it at the end."""
    state = service_state(app, AuthState)
    settings, service = state.settings, state.service
    tasks: list[asyncio.Task[None]] = []
    try:
        await migrate(settings)
        await state.key_store.ensure()
        password = settings.admin_password.get_secret_value()
        await service.seed_admin(Seed(settings.admin_username, password) if password else None)
        for user_id, mark in await service.marks():
            state.verifier.marks.apply(user_id, mark)
        async with state.mqtt:
            tasks = [
                asyncio.create_task(state.marks.run(service.marks), name="auth-marks"),
                asyncio.create_task(
                    _every(KEY_RELOAD_INTERVAL, state.key_store.reload, "reloading keys"),
                    name="auth-key-reload",
                ),
                asyncio.create_task(
                    _every(3600.0, state.key_store.rotate_if_due, "rotating keys"),
                    name="auth-key-rotation",
                ),
                asyncio.create_task(
                    _every(THROTTLE_PRUNE_INTERVAL, state.guard.prune, "pruning the throttle"),
                    name="auth-throttle-prune",
                ),
            ]
            yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state.engine.dispose()


async def _every(interval: float, action: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``action`` every ``interval`` seconds forever; failures are logged, not fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            await action()
        except Exception:
            log.exception("%s failed", what)
