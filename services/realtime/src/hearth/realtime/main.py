"""Realtime's composition root: ``create_app(settings=None)`` and its lifespan.

The ASGI app is a python-socketio server (path ``/socket.io/``) wrapped around a small
FastAPI app (``/healthz``, ``/readyz``, ``/metrics``, OpenAPI):
``socketio.ASGIApp(sio, other_asgi_app=fastapi_app)``, with no ``on_startup`` or
``on_shutdown`` of its own, so FastAPI's lifespan runs (python-socketio passes the
lifespan messages through).

``create_app`` builds every object (:class:`~hearth.realtime.state.RealtimeState`) and
nothing connects yet. The lifespan opens the registry client and connects to the broker
(not waited for: ``/readyz`` reports it) subscribed to the system bus
(``hearth-sys/auth/users/+`` feeding the token verifier's revocation marks,
``hearth-sys/registry/homes/+`` feeding withdrawals). Room subscriptions are added and
removed on the same connection as rooms fill and empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import socketio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.registry_client import RegistryClient
from hearth.common.routing import TopicRouter
from hearth.common.tokens import RevocationMarks, TokenVerifier, verifier_from_settings
from hearth.common.web import create_service_app, service_state
from hearth.realtime.api import asyncapi as asyncapi_api
from hearth.realtime.backlog import SendQueues
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.service import RealtimeService
from hearth.realtime.sockets import bind_events, create_socket_server
from hearth.realtime.state import RealtimeState

__all__ = ["create_app", "lifespan"]


def create_app(
    settings: RealtimeSettings | None = None,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
    token_verifier: TokenVerifier | None = None,
) -> socketio.ASGIApp:
    """The realtime ASGI app (settings from the environment unless given).

    The FastAPI app is ``create_app(...).other_asgi_app``; its state is a
    :class:`~hearth.realtime.state.RealtimeState`. ``registry_transport`` replaces the
    network for registry calls and ``token_verifier`` the verifier built from the
    settings (tests).
    """
    settings = settings or RealtimeSettings.load()
    verifier = token_verifier or verifier_from_settings(settings, marks=RevocationMarks())
    metrics = CollectorRegistry(auto_describe=True)
    sio = create_socket_server(settings.cors_allowed_origins)
    router = TopicRouter()
    mqtt = MqttConnection(MqttConfig.from_settings(settings), router=router)
    registry = RegistryClient(
        settings.registry_url,
        timeout=settings.registry_timeout,
        max_entries=settings.authorize_cache_size,
        transport=registry_transport,
    )
    service = RealtimeService(
        sio,
        SendQueues(sio),
        mqtt,
        verifier,
        registry,
        RealtimeMetrics(metrics),
        max_rooms=settings.max_rooms_per_socket,
        last_values=settings.last_values_per_room,
        max_backlog=settings.max_backlog,
        router=router,
    )
    bind_events(sio, service)
    app = create_service_app(
        settings,
        title="Hearth realtime",
        description="Socket.IO rooms named by MQTT topics, checked by token and registry "
        "(Socket.IO at /socket.io/; its events: GET /asyncapi.json).",
        lifespan=lifespan,
        token_verifier=verifier,
        state=RealtimeState(
            settings=settings, sio=sio, mqtt=mqtt, registry=registry, service=service
        ),
        metrics_registry=metrics,
        readiness_checks={"broker": mqtt.readiness_check},
        openapi_tags=asyncapi_api.TAGS,
    )
    app.include_router(asyncapi_api.router)
    return socketio.ASGIApp(sio, other_asgi_app=app)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start what ``create_app`` built (see the module docstring), stop it at the end."""
    state = service_state(app, RealtimeState)
    async with state.registry, state.mqtt:
        try:
            yield
        finally:
            await state.service.close()
