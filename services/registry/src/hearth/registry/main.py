"""The registry's composition root: ``create_app(settings=None)`` and its lifespan.

``create_app`` builds every object (:class:`~hearth.registry.state.RegistryState`) and
nothing connects yet. The lifespan starts them, in order: wait for the database and
migrate (advisory-locked, so every replica may), open the client of auth's user lookup,
connect to the broker (not waited for: ``/readyz`` reports it) subscribed to the users'
revocation marks, which feed the token verifier, to the dynsec response topic, and to
the metrics ingest discovered (:mod:`hearth.registry.discovered`); once connected,
reconcile the broker's device logins with the table in the background
(:class:`~hearth.registry.start_reconcile.StartReconcile`: retried until it succeeds,
``/readyz`` reports ``device_logins`` until then). The same connection hears every
device's state, status, acks and telemetry (:class:`~hearth.registry.device_watch.DeviceWatch`)
and carries change events, device-login commands, commands to devices and the devices'
capability snapshots; after every (re)connect, every live device's snapshot is republished
(:mod:`hearth.registry.snapshots`). The sweeper (expired commands, silent devices) runs in
the background until the end.
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
from hearth.common.dynsec import RESPONSE_TOPIC
from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import USER_MARKS_FILTER, RevocationMarks, verifier_from_settings
from hearth.common.topics import DISCOVERED_FILTER
from hearth.common.web import create_service_app, service_state
from hearth.registry import openapi_examples
from hearth.registry.api import authorize as authorize_api
from hearth.registry.api import commands as commands_api
from hearth.registry.api import devices as devices_api
from hearth.registry.api import homes as homes_api
from hearth.registry.api import logins as logins_api
from hearth.registry.api import members as members_api
from hearth.registry.commands import CommandService
from hearth.registry.config import RegistrySettings
from hearth.registry.device_bus import DeviceBus
from hearth.registry.device_logins import DeviceLogins
from hearth.registry.device_watch import DeviceWatch
from hearth.registry.discovered import DiscoveredMetrics
from hearth.registry.dynsec_client import DynsecClient
from hearth.registry.events import EventPublisher
from hearth.registry.migrate import MIGRATIONS, migrate
from hearth.registry.passwords import DevicePasswords
from hearth.registry.presence import PresenceService
from hearth.registry.repository import RegistryRepository
from hearth.registry.service import RegistryService
from hearth.registry.shadow import LiveShadow
from hearth.registry.snapshots import SnapshotPublisher
from hearth.registry.start_reconcile import StartReconcile
from hearth.registry.state import RegistryState
from hearth.registry.sweeper import Sweeper
from hearth.registry.users import AuthUsers
from hearth.registry.waiters import CommandWaiters

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

    passwords = DevicePasswords(settings.device_key.get_secret_value())
    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)
    mqtt = MqttConnection(MqttConfig.from_settings(settings), router=router)
    dynsec = DynsecClient(mqtt, timeout=settings.dynsec_timeout)
    router.route(RESPONSE_TOPIC, dynsec.handle_response)
    users = AuthUsers(settings.auth_url, timeout=settings.auth_timeout, transport=auth_transport)
    events = EventPublisher(mqtt, wait=settings.event_publish_wait)
    transactions = Transactions(session_factory(engine), RegistryRepository)
    shadow = LiveShadow(max_bytes=settings.shadow_max_bytes)
    bus = DeviceBus(mqtt, wait=settings.event_publish_wait)
    commands = CommandService(transactions, bus, CommandWaiters(settings.max_waiting))
    presence = PresenceService(transactions, events, bus, shadow)
    watch = DeviceWatch(shadow, presence, commands)
    watch.route(router)
    service = RegistryService(
        transactions,
        users,
        events,
        DeviceLogins(dynsec),
        passwords,
        settings.device_broker(),
        shadow,
        SnapshotPublisher(mqtt, wait=settings.event_publish_wait),
        authorize_ttl=settings.authorize_ttl,
    )
    discovered = DiscoveredMetrics(service)
    router.route(DISCOVERED_FILTER, discovered.handle)
    readiness = {"database": database_check(engine), "broker": mqtt.readiness_check}
    start_reconcile = None
    if settings.reconcile_at_start:
        start_reconcile = StartReconcile(mqtt, service.reconcile)
        readiness["device_logins"] = start_reconcile.readiness_check
    state = RegistryState(
        settings=settings,
        engine=engine,
        mqtt=mqtt,
        users=users,
        events=events,
        service=service,
        commands=commands,
        shadow=shadow,
        watch=watch,
        sweeper=Sweeper(commands, presence, interval=settings.sweep_interval),
        start_reconcile=start_reconcile,
        discovered=discovered,
    )
    app = create_service_app(
        settings,
        title="Hearth registry",
        description="Homes, members, devices and their capabilities; who may do what.",
        lifespan=lifespan,
        token_verifier=verifier_from_settings(settings, marks=marks),
        state=state,
        readiness_checks=readiness,
        openapi_tags=openapi_examples.TAGS,
        openapi_examples=openapi_examples.EXAMPLES,
    )
    app.include_router(homes_api.router)
    app.include_router(members_api.router)
    app.include_router(devices_api.router)
    app.include_router(authorize_api.router)
    app.include_router(logins_api.router)
    app.include_router(commands_api.router)
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
            background = [
                asyncio.create_task(_republish_snapshots(state)),
                asyncio.create_task(state.sweeper.run(), name="registry-sweeper"),
            ]
            if state.start_reconcile is not None:
                background.append(asyncio.create_task(state.start_reconcile.run()))
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
    finally:
        await state.engine.dispose()
