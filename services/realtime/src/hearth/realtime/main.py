"""Realtime's composition root: ``create_app(settings=None)`` and its lifespan.

The ASGI app is a python-socketio server (path ``/socket.io/``) wrapped around a small
FastAPI app (``/healthz``, ``/readyz``, ``/metrics``, OpenAPI):
``socketio.ASGIApp(sio, other_asgi_app=fastapi_app)``, with no ``on_startup`` or
``on_shutdown`` of its own, so FastAPI's lifespan runs (python-socketio passes the
lifespan messages through).

Startup: open the registry client, connect to the broker (not waited for: ``/readyz``
reports it) subscribed to the system bus (``hearth-sys/auth/users/+`` feeding the token
verifier's revocation marks, ``hearth-sys/registry/homes/+`` feeding withdrawals). Room
subscriptions are added and removed on the same connection as rooms fill and empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import socketio
from fastapi import FastAPI

from hearth.common.mqtt import MqttConfig, MqttConnection
from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import (
    RevocationMarks,
    TokenVerifier,
    verifier_from_settings,
)
from hearth.common.web import add_readiness_check, create_service_app, metrics_registry
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.service import RealtimeService
from hearth.realtime.sockets import bind_events, create_socket_server, transport_drained

__all__ = ["create_app"]


def create_app(
    settings: RealtimeSettings | None = None,
    *,
    registry_transport: httpx.AsyncBaseTransport | None = None,
    token_verifier: TokenVerifier | None = None,
) -> socketio.ASGIApp:
    """The realtime ASGI app (settings from the environment unless given).

    The FastAPI app is ``create_app(...).other_asgi_app``; the service is on its
    ``state.realtime``. ``registry_transport`` replaces the network for registry calls
    and ``token_verifier`` the verifier built from the settings (tests).
    """
    settings = settings or RealtimeSettings.load()
    verifier = token_verifier or verifier_from_settings(settings, marks=RevocationMarks())
    sio = create_socket_server(settings.cors_allowed_origins)
    authorizer = RegistryClient(
        settings.registry_url,
        timeout=settings.registry_timeout,
        max_entries=settings.authorize_cache_size,
        transport=registry_transport,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mqtt = MqttConnection(
            MqttConfig.from_settings(settings),
            router=service.router,
        )
        service.broker = mqtt
        app.state.mqtt = mqtt

        add_readiness_check(app, "broker", mqtt.readiness_check)
        async with authorizer, mqtt:
            try:
                yield
            finally:
                await service.close()

    app = create_service_app(
        settings,
        title="Hearth realtime",
        description="Socket.IO rooms named by MQTT topics, checked by token and registry "
        "(Socket.IO at /socket.io/; events in the README).",
        lifespan=lifespan,
        token_verifier=verifier,
    )
    service = RealtimeService(
        sio,
        _NoBroker(),
        verifier,
        authorizer,
        RealtimeMetrics(metrics_registry(app)),
        max_rooms=settings.max_rooms_per_socket,
        last_values=settings.last_values_per_room,
        max_backlog=settings.max_backlog,
        drained=transport_drained(sio),
    )
    app.state.realtime = service
    app.state.sio = sio
    bind_events(sio, service)
    return socketio.ASGIApp(sio, other_asgi_app=app)


class _NoBroker:
    """The broker before the lifespan started: nothing may subscribe yet."""

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None:
        raise RuntimeError("realtime is not started")

    async def unsubscribe(self, topic_filter: str) -> None:
        raise RuntimeError("realtime is not started")
