"""The Socket.IO side: an ``AsyncServer`` whose handlers call :class:`RealtimeService`.

Events of namespace ``/`` (design.md, "Socket.IO events"): ``connect`` with ``auth:
{token}`` (refused with ``connect_error`` message ``unauthorized`` and ``data.reason``),
``subscribe``, ``unsubscribe``, ``publish`` and ``reauth`` (each answered by its ack),
``disconnect``. The server sends ``message``, ``messages`` and ``revoked``.

:func:`transport_drained` is how the service sees a socket's backlog: python-socketio's
``emit(to=sid)`` returns as soon as the packet is on the engine.io socket's queue (an
unbounded ``asyncio.Queue``, so it never waits for the network); the socket's writer task
takes packets off that queue and awaits the websocket send. A slow client keeps the writer
waiting, so packets stay on the queue: that queue not being empty is the backlog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from hearth.common.errors import KeysUnavailable, TokenError
from hearth.realtime.service import RealtimeService

__all__ = ["bind_events", "create_socket_server", "transport_drained"]


def create_socket_server(cors_allowed_origins: list[str]) -> socketio.AsyncServer:
    """An ASGI ``AsyncServer`` (its own loggers off: the service logs what matters)."""
    origins: str | list[str] = "*" if cors_allowed_origins == ["*"] else cors_allowed_origins
    return socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins=origins,
        logger=False,
        engineio_logger=False,
    )


def transport_drained(sio: socketio.AsyncServer) -> Callable[[str], Awaitable[None]]:
    """``drained(sid)``: waits until the writer of socket ``sid`` took every queued packet.

    Returns at once when the socket is unknown or closed. Uses python-engineio's socket
    queue (``AsyncSocket.queue``, whose writer calls ``task_done`` as it takes a packet),
    so ``queue.join()`` returns when nothing is waiting for the writer any more.
    """

    async def drained(sid: str) -> None:
        eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        socket = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        queue = getattr(socket, "queue", None)
        if socket is None or getattr(socket, "closed", True) or queue is None:
            return
        await queue.join()

    return drained


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
