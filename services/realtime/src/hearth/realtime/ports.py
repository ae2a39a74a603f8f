"""What realtime's rules need of the outside world, as Protocols.

``socketio.AsyncServer`` is a :class:`SocketServer` and
:class:`~hearth.common.mqtt.MqttConnection` a :class:`BrokerSubscriber`; the unit tests
pass fakes of both, which is how they force races a live run cannot produce (a slow
SUBACK, an emit held while a burst arrives).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BrokerSubscriber", "SocketServer"]


class SocketServer(Protocol):
    """What the rules need of a Socket.IO server (``socketio.AsyncServer`` has it)."""

    async def emit(
        self, event: str, data: Any = None, to: str | None = None, room: str | None = None
    ) -> None: ...

    async def enter_room(self, sid: str, room: str) -> None: ...

    async def leave_room(self, sid: str, room: str) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


class BrokerSubscriber(Protocol):
    """What the rules need of the broker connection (``MqttConnection`` has it)."""

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None: ...

    async def unsubscribe(self, topic_filter: str) -> None: ...
