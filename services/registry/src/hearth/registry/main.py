"""The registry's composition root: ``create_app(settings=None)`` and its lifespan.

Startup, in order: wait for the database, migrate (advisory-locked, so every replica
may), open the client of auth's user lookup, connect to the broker (not waited for:
``/readyz`` reports it) subscribed to the users' revocation marks, which feed the
token verifier. Change events go out on the same connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiomqtt
import httpx
from fastapi import FastAPI

from hearth.common.db import create_engine, database_check, session_factory, wait_for_database
from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import USER_MARKS_FILTER, RevocationMarks, verifier_from_settings
from hearth.common.web import add_readiness_check, create_service_app
from hearth.registry.api import authorize as authorize_api
from hearth.registry.api import devices as devices_api
from hearth.registry.api import homes as homes_api
from hearth.registry.api import members as members_api
from hearth.registry.config import RegistrySettings
from hearth.registry.events import EventPublisher
from hearth.registry.migrate import MIGRATIONS
from hearth.registry.service import RegistryService
from hearth.registry.users import AuthUsers

__all__ = ["create_app"]


def create_app(
    settings: RegistrySettings | None = None,
    *,
    auth_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The registry app (settings from the environment unless given).

    ``auth_transport`` replaces the network for calls to auth (tests).
    """
    settings = settings or RegistrySettings.load()
    url = settings.require_database_url()
    marks = RevocationMarks()
    verifier = verifier_from_settings(settings, marks=marks)

    def on_user_mark(message: aiomqtt.Message) -> None:
        marks.handle_message(str(message.topic), payload_bytes(message))

    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await wait_for_database(url, timeout=settings.database_wait)
        await MIGRATIONS.upgrade(url)
        engine = create_engine(url, schema=MIGRATIONS.schema, application_name=settings.client_id)
        mqtt = MqttConnection(
            MqttConfig.from_settings(settings),
            router=router,
        )
        users = AuthUsers(
            settings.auth_url, timeout=settings.auth_timeout, transport=auth_transport
        )
        events = EventPublisher(mqtt, wait=settings.event_publish_wait)
        app.state.registry_service = RegistryService(
            session_factory(engine), users, events, authorize_ttl=settings.authorize_ttl
        )
        app.state.events = events
        app.state.mqtt = mqtt

        add_readiness_check(app, "database", database_check(engine))
        add_readiness_check(app, "broker", mqtt.readiness_check)
        try:
            async with users, mqtt:
                yield
        finally:
            await engine.dispose()

    app = create_service_app(
        settings,
        title="Hearth registry",
        description="Homes, members, devices and their capabilities; who may do what.",
        lifespan=lifespan,
        token_verifier=verifier,
    )
    app.include_router(homes_api.router)
    app.include_router(members_api.router)
    app.include_router(devices_api.router)
    app.include_router(authorize_api.router)
    return app
