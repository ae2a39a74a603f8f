"""The registry's composition root: ``create_app(settings=None)`` and its lifespan.

``create_app`` builds every object (:class:`~hearth.registry.state.RegistryState`) and
nothing connects yet. The lifespan starts them, in order: wait for the database and
migrate (advisory-locked, so every replica may), open the client of auth's user lookup,
connect to the broker (not waited for: ``/readyz`` reports it) subscribed to the users'
revocation marks, which feed the token verifier, and to the metrics ingest discovered
(:mod:`hearth.registry.discovered`). Change events and the devices' capability snapshots
go out on the same connection; after every (re)connect, every live device's snapshot is
republished (:mod:`hearth.registry.snapshots`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiomqtt
import httpx
from fastapi import FastAPI

from hearth.common.db import Transactions, create_engine, database_check, session_factory
from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import USER_MARKS_FILTER, RevocationMarks, verifier_from_settings
from hearth.common.topics import DISCOVERED_FILTER
from hearth.common.web import create_service_app, service_state
from hearth.registry.api import authorize as authorize_api
from hearth.registry.api import devices as devices_api
from hearth.registry.api import homes as homes_api
from hearth.registry.api import members as members_api
from hearth.registry.config import RegistrySettings
from hearth.registry.discovered import DiscoveredMetrics
from hearth.registry.events import EventPublisher
from hearth.registry.migrate import MIGRATIONS, migrate
from hearth.registry.repository import RegistryRepository
from hearth.registry.service import RegistryService
from hearth.registry.snapshots import SnapshotPublisher
from hearth.registry.state import RegistryState
from hearth.registry.users import AuthUsers

__all__ = ["create_app", "lifespan"]

log = logging.getLogger(__name__)


def create_app(
    settings: RegistrySettings | None = None,
    *,
    auth_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The registry app (settings from the environment unless given).

    ``auth_transport`` replaces the network for calls to auth (tests).
    """
    settings = settings or RegistrySettings.load()
    marks = RevocationMarks()
    engine = create_engine(
        settings.require_database_url(),
        schema=MIGRATIONS.schema,
        application_name=settings.client_id,
    )

    def on_user_mark(message: aiomqtt.Message) -> None:
        marks.handle_message(str(message.topic), payload_bytes(message))

    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)
    mqtt = MqttConnection(MqttConfig.from_settings(settings), router=router)
    users = AuthUsers(settings.auth_url, timeout=settings.auth_timeout, transport=auth_transport)
    events = EventPublisher(mqtt, wait=settings.event_publish_wait)
    service = RegistryService(
        Transactions(session_factory(engine), RegistryRepository),
        users,
        events,
        SnapshotPublisher(mqtt, wait=settings.event_publish_wait),
        authorize_ttl=settings.authorize_ttl,
    )
    discovered = DiscoveredMetrics(service)
    router.route(DISCOVERED_FILTER, discovered.handle)
    state = RegistryState(
        settings=settings,
        engine=engine,
        mqtt=mqtt,
        users=users,
        events=events,
        service=service,
        discovered=discovered,
    )
    app = create_service_app(
        settings,
        title="Hearth registry",
        description="Homes, members, devices and their capabilities; who may do what.",
        lifespan=lifespan,
        token_verifier=verifier_from_settings(settings, marks=marks),
        state=state,
        readiness_checks={"database": database_check(engine), "broker": mqtt.readiness_check},
    )
    app.include_router(homes_api.router)
    app.include_router(members_api.router)
    app.include_router(devices_api.router)
    app.include_router(authorize_api.router)
    return app


async def _republish_snapshots(state: RegistryState) -> None:
    """After every (re)connect, publish every live device's snapshot again.

    The broker may have lost retained snapshots in its crash window (docs/broker.md);
    a connection is noticed within ``_RECONNECT_CHECK`` seconds.
    """
    seen = 0
    while True:
        await state.mqtt.wait_connected()
        if state.mqtt.connects != seen:
            seen = state.mqtt.connects
            try:
                count = await state.service.republish_snapshots()
            except Exception:
                log.exception("device snapshots not republished")
            else:
                log.info("device snapshots republished", extra={"devices": count})
        await asyncio.sleep(_RECONNECT_CHECK)


_RECONNECT_CHECK = 1.0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start what ``create_app`` built (see the module docstring), stop it at the end."""
    state = service_state(app, RegistryState)
    try:
        await migrate(state.settings)
        async with state.users, state.mqtt:
            republish = asyncio.create_task(_republish_snapshots(state))
            try:
                yield
            finally:
                republish.cancel()
    finally:
        await state.engine.dispose()
