"""What realtime's rules need of the outside world, as Protocols.

``socketio.AsyncServer`` is a :class:`SocketServer` and
:class:`~hearth.common.mqtt.MqttConnection` a :class:`BrokerSubscriber`; the unit tests
pass fakes of both, which is how they force races a live run cannot produce (a slow
SUBACK, a socket whose queue stays full while a burst arrives). :class:`SendQueues` is
what :class:`hearth.realtime.backlog.SendQueues` gives (the writes and the backlog).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BrokerSubscriber", "SendQueues", "SocketServer"]


class SocketServer(Protocol):
    """What the rules need of a Socket.IO server (``socketio.AsyncServer`` has it)."""

    async def emit(
        self, event: str, data: Any = None, to: str | None = None, room: str | None = None
    ) -> None: ...

    async def enter_room(self, sid: str, room: str) -> None: ...

    async def leave_room(self, sid: str, room: str) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


class SendQueues(Protocol):
    """Sockets' send queues (:class:`hearth.realtime.backlog.SendQueues` is one)."""

    def write(self, sid: str, event: str, data: Any) -> bool:
        """Put ``event`` on socket ``sid``'s queue; False if the socket is gone."""
        ...

    def depth(self, sid: str) -> int:
        """Packets waiting on socket ``sid``'s queue (0 if it is gone)."""
        ...


class BrokerSubscriber(Protocol):
    """What the rules need of the broker connection (``MqttConnection`` has it)."""

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None: ...

    async def unsubscribe(self, topic_filter: str) -> None: ...
