"""RealtimeService: sockets, rooms and the broker, with every step checked.

The rules of design.md ("Socket.IO events", "Room life"), independent of the transport:
the Socket.IO handlers (:mod:`hearth.realtime.sockets`) call :meth:`connect`,
:meth:`subscribe`, :meth:`unsubscribe`, :meth:`reauth` and :meth:`disconnected`; the
broker connection calls :meth:`handle_mqtt` with every message it receives.

- **connect**: the token in ``auth: {token}`` is verified (JWKS and revocation marks);
  the socket is disconnected when it expires (``exp`` plus the verifier's leeway) unless
  ``reauth`` brought a newer token of the same user.
- **subscribe**: the token is verified again, the topic or filter must be in the
  ``hearth/`` grammar, the registry must allow reading it (cached per its TTL), and the
  socket may be in at most ``max_rooms`` rooms. The socket then joins the room named by
  the topic; the first member makes the replica subscribe at the broker with the room's
  own subscription identifier; the last one leaving (or disconnecting) unsubscribes.
- **messages**: each broker message goes to the room(s) of the subscription
  identifier(s) it carries, once per room, and updates that room's last values. Each
  member socket gets it through its own :class:`~hearth.realtime.outbox.Outbox`: as
  ``message`` at once, or in a ``messages`` burst while the socket is backlogged (at most
  5 ms late); a socket whose backlog exceeds ``max_backlog`` is disconnected.
- **withdrawal**: a registry event for a home drops its cached answers and re-checks the
  sockets in that home's rooms (for a membership event: that user's sockets only); a
  socket that may no longer read a room leaves it and gets ``revoked {topic, reason}``.
  A user's revocation mark drops their answers and re-verifies their sockets' tokens;
  a refused token gets ``revoked`` for each room, then the socket is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt

from hearth.common.clock import utc_now
from hearth.common.errors import KeysUnavailable, TokenError, TokenMissing
from hearth.common.messages import MessageError, RegistryEvent, RegistryKind, format_timestamp
from hearth.common.mqtt import MqttRefused
from hearth.common.registry_client import Decision, RegistryClient, RegistryUnavailable
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import Caller, RevocationMarks, TokenVerifier
from hearth.common.topics import (
    REGISTRY_HOMES_FILTER,
    ROOT,
    USER_MARKS_FILTER,
    TopicError,
    filter_home,
    parse_filter,
    parse_user_mark_topic,
)
from hearth.realtime.errors import REGISTRY_REASON_CODES, SocketError, error_ack
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.outbox import Outbox
from hearth.realtime.payloads import decode_payload
from hearth.realtime.rooms import Rooms

__all__ = ["BrokerSubscriber", "RealtimeService", "Session", "SocketServer"]

log = logging.getLogger(__name__)

_RECHECK_CONCURRENCY = 16


class SocketServer(Protocol):
    """What the service needs of a Socket.IO server (``socketio.AsyncServer`` has it)."""

    async def emit(
        self, event: str, data: Any = None, to: str | None = None, room: str | None = None
    ) -> None: ...

    async def enter_room(self, sid: str, room: str) -> None: ...

    async def leave_room(self, sid: str, room: str) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


class BrokerSubscriber(Protocol):
    """What the service needs of its broker connection (``MqttConnection`` has it)."""

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None: ...

    async def unsubscribe(self, topic_filter: str) -> None: ...


@dataclass(eq=False)
class Session:
    """One connected socket: who it is (the newest verified token) and its rooms.

    ``ops`` orders the socket's ``subscribe`` and ``unsubscribe`` events: python-socketio
    runs each event in its own task, so without it an ``unsubscribe`` sent right after a
    ``subscribe`` could finish first and leave the socket in the room.
    """

    sid: str
    caller: Caller
    outbox: Outbox | None = None
    rooms: set[str] = field(default_factory=set)
    expiry: asyncio.TimerHandle | None = None
    ops: asyncio.Lock = field(default_factory=asyncio.Lock)


class RealtimeService:
    """The realtime rules over a Socket.IO server, a broker connection and the registry."""

    def __init__(
        self,
        sio: SocketServer,
        broker: BrokerSubscriber,
        verifier: TokenVerifier,
        authorizer: RegistryClient,
        metrics: RealtimeMetrics,
        *,
        max_rooms: int = 50,
        last_values: int = 500,
        max_backlog: int = 10_000,
        drained: Callable[[str], Awaitable[None]] | None = None,
        router: TopicRouter | None = None,
    ) -> None:
        self.sio = sio
        self.broker = broker
        self.verifier = verifier
        self.authorizer = authorizer
        self.metrics = metrics
        self.max_rooms = max_rooms
        self.max_backlog = max_backlog
        self.drained = drained
        """Waits until the transport took everything queued for a socket (its backlog)."""
        self.rooms = Rooms(max_values=last_values)
        self._sessions: dict[str, Session] = {}
        self._by_user: defaultdict[str, set[str]] = defaultdict(set)
        self._lock = asyncio.Lock()  # room creation/removal and broker (un)subscribe
        self._tasks: set[asyncio.Task[None]] = set()
        self.router = router if router is not None else TopicRouter()
        """Where broker messages go: the system bus by filter, the rest to the rooms."""
        self.router.route(USER_MARKS_FILTER, self._on_user_mark)
        self.router.route(REGISTRY_HOMES_FILTER, self._on_registry_event)
        self.router.otherwise(self._deliver)

    @property
    def marks(self) -> RevocationMarks:
        """The users' revocation marks the verifier checks."""
        return self.verifier.marks

    def session(self, sid: str) -> Session | None:
        """The session of socket ``sid``, if connected."""
        return self._sessions.get(sid)

    @property
    def sessions(self) -> int:
        """How many sockets are connected."""
        return len(self._sessions)

    async def close(self) -> None:
        """Cancel expiry timers and background re-checks (the app is stopping)."""
        for session in self._sessions.values():
            if session.expiry is not None:
                session.expiry.cancel()
            if session.outbox is not None:
                session.outbox.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ connect

    async def connect(self, sid: str, auth: object) -> Session:
        """Verify the token of a new socket; raises ``TokenError`` or ``KeysUnavailable``."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            self.metrics.refusals.labels("connect", "unauthorized").inc()
            raise TokenMissing("no token in the connect payload (auth: {token})")
        try:
            caller = await self.verifier.verify(token)
        except TokenError:
            self.metrics.refusals.labels("connect", "unauthorized").inc()
            raise
        except KeysUnavailable:
            self.metrics.refusals.labels("connect", "unavailable").inc()
            raise
        session = Session(sid, caller)
        session.outbox = self._outbox(session)
        self._sessions[sid] = session
        self._by_user[caller.user_id].add(sid)
        self._schedule_expiry(session)
        self.metrics.connections.set(len(self._sessions))
        return session

    async def disconnected(self, sid: str) -> None:
        """Forget a socket that is gone: leave its rooms (the last member unsubscribes)."""
        session = self._sessions.pop(sid, None)
        if session is None:
            return
        if session.expiry is not None:
            session.expiry.cancel()
        if session.outbox is not None:
            session.outbox.close()
        sids = self._by_user.get(session.caller.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[session.caller.user_id]
        self.metrics.connections.set(len(self._sessions))
        for name in list(session.rooms):
            await self._leave(session, name, socket_gone=True)

    # ------------------------------------------------------------------ events

    async def subscribe(self, sid: str, data: object) -> dict[str, Any]:
        """The ``subscribe {topic}`` event: its ack."""
        try:
            session = self._sessions.get(sid)
            if session is None:
                raise SocketError("unauthorized", "not connected")
            async with session.ops:
                return await self._subscribe(session, data)
        except SocketError as exc:
            self.metrics.refusals.labels("subscribe", exc.code).inc()
            return exc.ack()

    async def unsubscribe(self, sid: str, data: object) -> dict[str, Any]:
        """The ``unsubscribe {topic}`` event: always ``{ok: true}`` (leaving twice is fine)."""
        session = self._sessions.get(sid)
        topic = data.get("topic") if isinstance(data, dict) else None
        if session is None or not isinstance(topic, str):
            return error_ack("invalid", "unsubscribe needs {topic}")
        async with session.ops:
            await self._leave(session, topic)
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
        session = self._sessions.get(sid)
        token = data.get("token") if isinstance(data, dict) else None
        if session is None or not isinstance(token, str):
            return error_ack("invalid", "reauth needs {token}")
        try:
            caller = await self.verifier.verify(token)
        except TokenError as exc:
            return error_ack("unauthorized", str(exc), reason=exc.reason)
        except KeysUnavailable:
            return error_ack("unavailable", "the token cannot be checked now; try again")
        if caller.user_id != session.caller.user_id:
            return error_ack("forbidden", "the token is another user's")
        session.caller = caller
        self._schedule_expiry(session)
        self._spawn(self._recheck((session.sid, name) for name in list(session.rooms)))
        return {"ok": True, "expires_at": caller.expires_at}

    # ------------------------------------------------------------------ subscribe

    async def _subscribe(self, session: Session, data: object) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if not isinstance(topic, str) or not topic:
            raise SocketError("invalid", "subscribe needs {topic}")
        home = _check_target(topic)
        await self._check_token(session)
        if topic not in session.rooms:
            if len(session.rooms) >= self.max_rooms:
                raise SocketError("limit", f"a socket may be in at most {self.max_rooms} rooms")
            decision = await self._may_read(session.caller, topic)
            if not decision.allowed:
                code = REGISTRY_REASON_CODES.get(decision.reason or "", "forbidden")
                raise SocketError(code, _denial_message(code, topic))
            await self._join(session, topic, home)
        room = self.rooms.get(topic)
        last = [] if room is None else [value.as_dict() for value in room.last_values()]
        return {"ok": True, "topic": topic, "last": last}

    async def _check_token(self, session: Session) -> None:
        try:
            await self.verifier.verify(session.caller.token)
        except TokenError as exc:
            self._spawn(self._end(session, exc.reason))
            raise SocketError("unauthorized", str(exc), reason=exc.reason) from None
        except KeysUnavailable:
            raise SocketError("unavailable", "the token cannot be checked now") from None

    async def _may_read(self, caller: Caller, topic: str) -> Decision:
        try:
            return await self.authorizer.may_read(caller, parse_filter(topic))
        except RegistryUnavailable:
            raise SocketError("unavailable", "the registry cannot answer now; try again") from None

    async def _join(self, session: Session, name: str, home: str | None) -> None:
        async with self._lock:
            if self._sessions.get(session.sid) is not session:  # gone while we waited
                raise SocketError("unauthorized", "disconnected meanwhile")
            if name in session.rooms:
                return
            room = self.rooms.get(name)
            new = room is None
            if room is None:
                room = self.rooms.create(name, home)
            room.members.add(session.sid)
            session.rooms.add(name)
            await self.sio.enter_room(session.sid, name)
            if new:
                try:
                    await self.broker.subscribe(name, 1, identifier=room.identifier)
                except MqttRefused:
                    room.members.discard(session.sid)
                    session.rooms.discard(name)
                    self.rooms.remove(room)
                    with contextlib.suppress(Exception):
                        await self.sio.leave_room(session.sid, name)
                    raise SocketError("forbidden", "the broker refused this topic") from None
            self._count_rooms()

    async def _leave(self, session: Session, name: str, *, socket_gone: bool = False) -> bool:
        """Take ``session`` out of room ``name``; whether it was in it."""
        async with self._lock:
            if name not in session.rooms:
                return False
            session.rooms.discard(name)
            if session.outbox is not None:
                session.outbox.discard(name)  # not yet sent: the socket is no longer in it
            room = self.rooms.get(name)
            if room is None:
                return True
            room.members.discard(session.sid)
            if not socket_gone:
                with contextlib.suppress(Exception):  # the socket may be gone already
                    await self.sio.leave_room(session.sid, name)
            if not room.members:
                self.rooms.remove(room)
                await self.broker.unsubscribe(name)
            self._count_rooms()
            return True

    def _count_rooms(self) -> None:
        self.metrics.rooms.set(len(self.rooms))
        self.metrics.broker_subscriptions.set(len(self.rooms))

    # ------------------------------------------------------------------ broker messages

    async def handle_mqtt(self, message: aiomqtt.Message) -> None:
        """One message from the broker: the system bus, or rooms by subscription identifier."""
        await self.router.dispatch(message)

    def _deliver(self, message: aiomqtt.Message) -> None:
        identifiers = getattr(message.properties, "SubscriptionIdentifier", None) or []
        rooms = [r for r in map(self.rooms.by_identifier, identifiers) if r is not None]
        if not rooms:
            return
        value = decode_payload(message.payload)
        ts = format_timestamp(utc_now())
        for room in rooms:
            room.remember(str(message.topic), value, ts)
            if not room.members:
                continue
            item = {
                "room": room.name,
                "topic": str(message.topic),
                "payload": value,
                "ts": ts,
                "retained": bool(message.retain),
            }
            for sid in list(room.members):
                session = self._sessions.get(sid)
                outbox = session.outbox if session is not None else None
                if outbox is not None and outbox.put(item):
                    self.metrics.delivered.inc()

    # ------------------------------------------------------------------ outboxes

    def _outbox(self, session: Session) -> Outbox:
        sid = session.sid

        async def send(event: str, data: Any) -> None:
            await self.sio.emit(event, data, to=sid)
            if event == "messages":
                self.metrics.bursts.inc()
            if self.drained is not None:
                await self.drained(sid)

        def overflow(backlog: int) -> None:
            log.warning(
                "disconnecting a slow socket: its backlog is full",
                extra={"sid": sid, "user": session.caller.user_id, "backlog": backlog},
            )
            self.metrics.slow_disconnects.inc()
            self._spawn(self._drop(session))

        return Outbox(send, capacity=self.max_backlog, on_overflow=overflow)

    async def _drop(self, session: Session) -> None:
        """Disconnect a socket that cannot keep up (it reconnects and subscribes again)."""
        if self._sessions.get(session.sid) is not session:
            return
        await self.sio.disconnect(session.sid)
        await self.disconnected(session.sid)

    def _on_user_mark(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        if not self.marks.handle_message(topic, payload_bytes(message)):
            return
        user_id = parse_user_mark_topic(topic)
        self.authorizer.forget_user(user_id)
        sids = list(self._by_user.get(user_id, ()))
        if sids:
            self._spawn(self._reverify(sids))

    def _on_registry_event(self, message: aiomqtt.Message) -> None:
        try:
            event = RegistryEvent.from_bytes(payload_bytes(message))
        except MessageError as exc:
            log.warning("ignoring a malformed registry event", extra={"error": str(exc)})
            return
        self.authorizer.handle_event(event)
        pairs: list[tuple[str, str]] = []
        for room in self.rooms:
            if room.home != event.home:
                continue
            for sid in room.members:
                session = self._sessions.get(sid)
                if session is None:
                    continue
                if event.kind is RegistryKind.MEMBERSHIP and session.caller.user_id != event.user:
                    continue
                pairs.append((sid, room.name))
        if pairs:
            self._spawn(self._recheck(pairs))

    # ------------------------------------------------------------------ withdrawal

    async def _recheck(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Ask the registry again for each (socket, room); withdraw what is no longer allowed."""
        limit = asyncio.Semaphore(_RECHECK_CONCURRENCY)

        async def one(sid: str, name: str) -> None:
            session = self._sessions.get(sid)
            if session is None or name not in session.rooms:
                return
            async with limit:
                try:
                    decision = await self.authorizer.may_read(session.caller, parse_filter(name))
                except RegistryUnavailable:
                    log.warning("re-check skipped: the registry cannot answer")
                    return
            if not decision.allowed:
                await self._withdraw(session, name, decision.reason or "forbidden")

        await asyncio.gather(*(one(sid, name) for sid, name in pairs))

    async def _withdraw(self, session: Session, name: str, reason: str) -> None:
        if await self._leave(session, name):
            self.metrics.withdrawals.labels(reason).inc()
            await self.sio.emit("revoked", {"topic": name, "reason": reason}, to=session.sid)

    async def _reverify(self, sids: list[str]) -> None:
        for sid in sids:
            session = self._sessions.get(sid)
            if session is None:
                continue
            try:
                await self.verifier.verify(session.caller.token)
            except TokenError as exc:
                await self._end(session, exc.reason)
            except KeysUnavailable:
                log.warning("re-verification skipped: auth's keys are unavailable")

    async def _end(self, session: Session, reason: str) -> None:
        """Withdraw every room (``revoked`` with ``reason``), then disconnect the socket."""
        if self._sessions.get(session.sid) is not session:
            return
        for name in list(session.rooms):
            if await self._leave(session, name):
                await self.sio.emit("revoked", {"topic": name, "reason": reason}, to=session.sid)
        self.metrics.withdrawals.labels(reason).inc()
        await self.sio.disconnect(session.sid)
        await self.disconnected(session.sid)

    # ------------------------------------------------------------------ expiry

    def _schedule_expiry(self, session: Session) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
        delay = session.caller.expires_at + self.verifier.leeway - time.time()
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(
            max(delay, 0.0), lambda: self._spawn(self._end(session, "expired"))
        )

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("realtime background work failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _check_target(topic: str) -> str | None:
    """Refuse what is not a ``hearth/`` topic or filter; the home it names, if literal."""
    try:
        parsed = parse_filter(topic)
    except TopicError as exc:
        raise SocketError("invalid", str(exc)) from None
    if parsed.share_group is not None or parsed.levels[0] != ROOT:
        raise SocketError("invalid", f"rooms are topics or filters under {ROOT}/")
    return filter_home(parsed)


def _denial_message(code: str, topic: str) -> str:
    if code == "not_found":
        return f"no topic {topic} that this user may see"
    if code == "invalid":
        return f"{topic} is not a topic or filter of one home"
    if code == "unauthorized":
        return "the registry refused the token"
    return f"not allowed to read {topic}"
