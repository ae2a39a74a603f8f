"""The Socket.IO side: an ``AsyncServer`` whose handlers call :class:`RealtimeService`.

Events of namespace ``/`` (design.md, "Socket.IO events"): ``connect`` with ``auth:
{token}`` (refused with ``connect_error`` message ``unauthorized`` and ``data.reason``),
``subscribe``, ``unsubscribe``, ``publish`` and ``reauth`` (each answered by its ack),
``disconnect``. The server sends ``message``, ``messages`` and ``revoked``.

How the service sees a socket's send backlog is :mod:`hearth.realtime.backlog`'s business
(the one module that reads python-engineio's internals); a connected socket's opening
request is released there too (``release_request``: realtime reads nothing of it later).
"""

from __future__ import annotations

from typing import Any

import socketio

from hearth.common.errors import KeysUnavailable, TokenError
from hearth.realtime.backlog import release_request
from hearth.realtime.service import RealtimeService

__all__ = ["bind_events", "create_socket_server"]


def create_socket_server(cors_allowed_origins: list[str]) -> socketio.AsyncServer:
    """An ASGI ``AsyncServer`` (its own loggers off: the service logs what matters)."""
    origins: str | list[str] = "*" if cors_allowed_origins == ["*"] else cors_allowed_origins
    return socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins=origins,
        logger=False,
        engineio_logger=False,
    )


def bind_events(sio: socketio.AsyncServer, service: RealtimeService) -> None:
    """Register the event handlers of namespace ``/`` on ``sio``."""

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        try:
            await service.connect(sid, auth)
        except TokenError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"reason": exc.reason}
            ) from None
        except KeysUnavailable:
            raise socketio.exceptions.ConnectionRefusedError(
                "unavailable", {"reason": "keys_unavailable"}
            ) from None
        release_request(environ)

    @sio.event  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, *reason: object) -> None:
        await service.disconnected(sid)

    @sio.event  # type: ignore[untyped-decorator]
    async def subscribe(sid: str, data: object = None) -> dict[str, Any]:
        return await service.subscribe(sid, data)

    @sio.event  # type: ignore[untyped-decorator]
    async def unsubscribe(sid: str, data: object = None) -> dict[str, Any]:
        return await service.unsubscribe(sid, data)

    @sio.event  # type: ignore[untyped-decorator]
    async def publish(sid: str, data: object = None) -> dict[str, Any]:
        return await service.publish(sid, data)

    @sio.event  # type: ignore[untyped-decorator]
    async def reauth(sid: str, data: object = None) -> dict[str, Any]:
        return await service.reauth(sid, data)
