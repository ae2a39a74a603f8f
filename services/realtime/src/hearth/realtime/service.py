"""RealtimeService: the Socket.IO events, each answered by the domain that owns it.

The rules of design.md ("Socket.IO events", "Room life"), independent of the transport.
The Socket.IO handlers (:mod:`hearth.realtime.sockets`) call :meth:`connect`,
:meth:`subscribe`, :meth:`unsubscribe`, :meth:`publish`, :meth:`reauth` and
:meth:`disconnected`; the broker connection hands every message to :attr:`router`. The
work is done by three domains:

- :class:`~hearth.realtime.sessions.Sessions`: connect, reauth, expiry, slow sockets;
- :class:`~hearth.realtime.rooms.Rooms`: join and leave, broker subscriptions, fan-out;
- :class:`~hearth.realtime.withdrawal.Withdrawal`: registry events, revocation marks,
  re-checks, the end of a session.

This facade checks an event's shape, asks the registry before a join, turns refusals
into acks (``{ok: false, error: {code, message}}``, counted) and orders each socket's own
``subscribe``/``unsubscribe`` events. ``subscribe``: the token is verified again, the
topic or filter must be in the ``hearth/`` grammar (parsed once, then passed typed), the
registry must allow reading it (cached per its TTL), and the socket may be in at most
``max_rooms`` rooms.
"""

from __future__ import annotations

from typing import Any

import aiomqtt

from hearth.common.errors import KeysUnavailable, TokenError
from hearth.common.registry_client import Decision, RegistryClient, RegistryUnavailable
from hearth.common.routing import TopicRouter
from hearth.common.tokens import Caller, TokenVerifier
from hearth.common.topics import ROOT, TopicError, TopicFilter, parse_filter
from hearth.realtime.background import Background
from hearth.realtime.errors import REGISTRY_REASON_CODES, SocketError, error_ack
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.ports import BrokerSubscriber, SendQueues, SocketServer
from hearth.realtime.rooms import Rooms
from hearth.realtime.sessions import OtherUser, Session, Sessions
from hearth.realtime.withdrawal import Withdrawal

__all__ = ["RealtimeService"]


class RealtimeService:
    """The realtime rules over a Socket.IO server, a broker connection and the registry."""

    def __init__(
        self,
        sio: SocketServer,
        queues: SendQueues,
        broker: BrokerSubscriber,
        verifier: TokenVerifier,
        registry: RegistryClient,
        metrics: RealtimeMetrics,
        *,
        max_rooms: int = 50,
        last_values: int = 500,
        max_backlog: int = 10_000,
        router: TopicRouter | None = None,
    ) -> None:
        self.sio = sio
        self.registry = registry
        self.metrics = metrics
        self.max_rooms = max_rooms
        self.background = Background()
        self.sessions = Sessions(
            sio,
            queues,
            verifier,
            metrics,
            on_expired=lambda session: self.withdrawal.expired(session),
            on_slow=lambda session: self.background.spawn(self._drop(session)),
            max_backlog=max_backlog,
        )
        self.rooms = Rooms(sio, broker, self.sessions, metrics, last_values=last_values)
        self.withdrawal = Withdrawal(
            sio,
            self.sessions,
            self.rooms,
            verifier.marks,
            registry,
            metrics,
            self.background,
            disconnect=self._disconnect,
        )
        self.router = router if router is not None else TopicRouter()
        """Where broker messages go: the system bus by filter, the rest to the rooms."""
        self.withdrawal.route(self.router)
        self.router.otherwise(self.rooms.deliver)
        self.router.when_caught_up(self.rooms.flush)

    def session(self, sid: str) -> Session | None:
        """The session of socket ``sid``, if connected."""
        return self.sessions.get(sid)

    async def close(self) -> None:
        """Cancel expiry timers, outboxes and background work (the app is stopping)."""
        self.rooms.fanout.close()
        self.sessions.close()
        await self.background.close()

    async def handle_mqtt(self, message: aiomqtt.Message) -> None:
        """One message from the broker, alone: the system bus, or rooms by subscription id.

        The broker connection dispatches through :attr:`router` and calls its ``caught_up``
        itself; this is one message followed by its catch-up (what a test hands in).
        """
        await self.router.dispatch(message)
        self.router.caught_up()

    # ------------------------------------------------------------------ connect, disconnect

    async def connect(self, sid: str, auth: object) -> Session:
        """Verify the token of a new socket; raises ``TokenError`` or ``KeysUnavailable``."""
        return await self.sessions.connect(sid, auth)

    async def disconnected(self, sid: str) -> None:
        """Forget a socket that is gone: leave its rooms (the last member unsubscribes)."""
        session = self.sessions.forget(sid)
        if session is not None:
            await self.rooms.leave_all(session, socket_gone=True)

    async def _disconnect(self, session: Session) -> None:
        await self.sio.disconnect(session.sid)
        await self.disconnected(session.sid)

    async def _drop(self, session: Session) -> None:
        """Disconnect a socket that cannot keep up (it reconnects and subscribes again)."""
        if self.sessions.is_current(session):
            await self._disconnect(session)

    # ------------------------------------------------------------------ events

    async def subscribe(self, sid: str, data: object) -> dict[str, Any]:
        """The ``subscribe {topic}`` event: its ack."""
        try:
            session = self.sessions.get(sid)
            if session is None:
                raise SocketError("unauthorized", "not connected")
            async with session.ops:
                return await self._subscribe(session, data)
        except SocketError as exc:
            self.metrics.refusals.labels("subscribe", exc.code).inc()
            return exc.ack()

    async def unsubscribe(self, sid: str, data: object) -> dict[str, Any]:
        """The ``unsubscribe {topic}`` event: always ``{ok: true}`` (leaving twice is fine)."""
        session = self.sessions.get(sid)
        topic = data.get("topic") if isinstance(data, dict) else None
        if session is None or not isinstance(topic, str):
            return error_ack("invalid", "unsubscribe needs {topic}")
        async with session.ops:
            await self.rooms.leave(session, topic)
        return {"ok": True}

    async def publish(self, sid: str, data: object) -> dict[str, Any]:
        """The ``publish`` event: commands come with the registry's command API (not yet)."""
        self.metrics.refusals.labels("publish", "invalid").inc()
        return error_ack(
            "invalid",
            "publish is not available yet: commands come with the registry's command API",
        )

    async def reauth(self, sid: str, data: object) -> dict[str, Any]:
        """The ``reauth {token}`` event: a newer token of the same user extends the session.

        The socket's rooms are re-checked with the new token (its scope or homes may be
        narrower); a refused token leaves the session as it was.
        """
        session = self.sessions.get(sid)
        token = data.get("token") if isinstance(data, dict) else None
        if session is None or not isinstance(token, str):
            return error_ack("invalid", "reauth needs {token}")
        try:
            caller = await self.sessions.reauth(session, token)
        except TokenError as exc:
            return error_ack("unauthorized", str(exc), reason=exc.reason)
        except KeysUnavailable:
            return error_ack("unavailable", "the token cannot be checked now; try again")
        except OtherUser as exc:
            return error_ack("forbidden", str(exc))
        self.withdrawal.recheck_rooms(session)
        return {"ok": True, "expires_at": caller.expires_at}

    # ------------------------------------------------------------------ subscribe

    async def _subscribe(self, session: Session, data: object) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if not isinstance(topic, str) or not topic:
            raise SocketError("invalid", "subscribe needs {topic}")
        target = _room_target(topic)
        await self._check_token(session)
        if topic not in session.rooms:
            if len(session.rooms) >= self.max_rooms:
                raise SocketError("limit", f"a socket may be in at most {self.max_rooms} rooms")
            decision = await self._may_read(session.caller, target)
            if not decision.allowed:
                code = REGISTRY_REASON_CODES.get(decision.reason or "", "forbidden")
                raise SocketError(code, _denial_message(code, topic))
            await self.rooms.join(session, target)
        room = self.rooms.get(topic)
        last = [] if room is None else [value.as_dict() for value in room.last_values()]
        return {"ok": True, "topic": topic, "last": last}

    async def _check_token(self, session: Session) -> None:
        try:
            await self.sessions.verify(session)
        except TokenError as exc:
            self.background.spawn(self.withdrawal.end(session, exc.reason))
            raise SocketError("unauthorized", str(exc), reason=exc.reason) from None
        except KeysUnavailable:
            raise SocketError("unavailable", "the token cannot be checked now") from None

    async def _may_read(self, caller: Caller, target: TopicFilter) -> Decision:
        try:
            return await self.registry.may_read(caller, target)
        except RegistryUnavailable:
            raise SocketError("unavailable", "the registry cannot answer now; try again") from None


def _room_target(topic: str) -> TopicFilter:
    """The parsed ``hearth/`` topic or filter a room is named by; ``invalid`` otherwise."""
    try:
        parsed = parse_filter(topic)
    except TopicError as exc:
        raise SocketError("invalid", str(exc)) from None
    if parsed.share_group is not None or parsed.levels[0] != ROOT:
        raise SocketError("invalid", f"rooms are topics or filters under {ROOT}/")
    return parsed


def _denial_message(code: str, topic: str) -> str:
    if code == "not_found":
        return f"no topic {topic} that this user may see"
    if code == "invalid":
        return f"{topic} is not a topic or filter of one home"
    if code == "unauthorized":
        return "the registry refused the token"
    return f"not allowed to read {topic}"
