"""Withdrawal: taking sockets out of rooms they may no longer read, and ending sessions.

- **registry events** (``hearth-sys/registry/homes/{home}``): the registry client drops
  its cached answers about the home; the sockets in that home's rooms are re-checked (for
  a membership event: that user's sockets only); a socket the registry now refuses leaves
  the room and gets ``revoked {topic, reason}`` with the registry's reason, and stays
  connected. A re-check the registry cannot answer keeps the room (logged).
- **revocation marks** (``hearth-sys/auth/users/{user id}``): the token verifier's marks
  take the mark, the registry client drops the user's answers, and the user's sockets'
  tokens are verified again; a refused token ends the session.
- **the end of a session** (a revoked or disabled user, an expired token): ``revoked``
  for each room (reason ``revoked``, ``disabled`` or ``expired``), then the socket is
  disconnected.
- **reauth**: the socket's rooms are re-checked with its new token (its scope or homes
  may be narrower).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import aiomqtt

from hearth.common.errors import KeysUnavailable, TokenError
from hearth.common.messages import RegistryKind
from hearth.common.registry_client import RegistryClient, RegistryUnavailable
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.tokens import RevocationMarks
from hearth.common.topics import REGISTRY_HOMES_FILTER, USER_MARKS_FILTER, parse_user_mark_topic
from hearth.realtime.background import Background
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.ports import SocketServer
from hearth.realtime.rooms import Rooms
from hearth.realtime.sessions import Session, Sessions

__all__ = ["Withdrawal"]

log = logging.getLogger(__name__)

_RECHECK_CONCURRENCY = 16

Disconnect = Callable[[Session], Awaitable[None]]
"""Disconnects a session's socket and forgets it (the facade's own way of doing so)."""


class Withdrawal:
    """Re-checks, withdrawals and the end of sessions (see the module docstring)."""

    def __init__(
        self,
        sio: SocketServer,
        sessions: Sessions,
        rooms: Rooms,
        marks: RevocationMarks,
        registry: RegistryClient,
        metrics: RealtimeMetrics,
        background: Background,
        *,
        disconnect: Disconnect,
    ) -> None:
        self._sio = sio
        self._sessions = sessions
        self._rooms = rooms
        self._marks = marks
        self._registry = registry
        self._metrics = metrics
        self._background = background
        self._disconnect = disconnect

    def route(self, router: TopicRouter) -> None:
        """Have ``router`` send the users' marks and the registry's events here."""
        router.route(USER_MARKS_FILTER, self.on_user_mark)
        router.route(REGISTRY_HOMES_FILTER, self.on_registry_event)

    # ------------------------------------------------------------------ the system bus

    def on_user_mark(self, message: aiomqtt.Message) -> None:
        """A user's revocation mark: keep it, drop their answers, re-verify their sockets."""
        topic = str(message.topic)
        if not self._marks.handle_message(topic, payload_bytes(message)):
            return
        user_id = parse_user_mark_topic(topic)
        self._registry.forget_user(user_id)
        sessions = self._sessions.of_user(user_id)
        if sessions:
            self._background.spawn(self._reverify(sessions))

    def on_registry_event(self, message: aiomqtt.Message) -> None:
        """A change in a home: drop its answers, re-check the sockets in its rooms."""
        event = self._registry.on_registry_event(message)
        if event is None:
            return
        pairs: list[tuple[Session, str]] = []
        for room in self._rooms:
            if room.home != event.home:
                continue
            for sid in room.members:
                session = self._sessions.get(sid)
                if session is None:
                    continue
                if event.kind is RegistryKind.MEMBERSHIP and session.caller.user_id != event.user:
                    continue
                pairs.append((session, room.name))
        if pairs:
            self._background.spawn(self._recheck(pairs))

    # ------------------------------------------------------------------ re-checks

    def recheck_rooms(self, session: Session) -> None:
        """Re-check every room of ``session`` (in the background), e.g. after ``reauth``."""
        self._background.spawn(self._recheck((session, name) for name in list(session.rooms)))

    async def _recheck(self, pairs: Iterable[tuple[Session, str]]) -> None:
        """Ask the registry again for each (socket, room); withdraw what is no longer allowed."""
        limit = asyncio.Semaphore(_RECHECK_CONCURRENCY)

        async def one(session: Session, name: str) -> None:
            room = self._rooms.get(name)
            if not self._sessions.is_current(session) or name not in session.rooms or not room:
                return
            async with limit:
                try:
                    decision = await self._registry.may_read(session.caller, room.target)
                except RegistryUnavailable:
                    log.warning("re-check skipped: the registry cannot answer")
                    return
            if not decision.allowed:
                await self._withdraw(session, name, decision.reason or "forbidden")

        await asyncio.gather(*(one(session, name) for session, name in pairs))

    async def _withdraw(self, session: Session, name: str, reason: str) -> None:
        if await self._rooms.leave(session, name):
            self._metrics.withdrawals.labels(reason).inc()
            await self._sio.emit("revoked", {"topic": name, "reason": reason}, to=session.sid)

    async def _reverify(self, sessions: list[Session]) -> None:
        for session in sessions:
            if not self._sessions.is_current(session):
                continue
            try:
                await self._sessions.verify(session)
            except TokenError as exc:
                await self.end(session, exc.reason)
            except KeysUnavailable:
                log.warning("re-verification skipped: auth's keys are unavailable")

    # ------------------------------------------------------------------ the end

    def expired(self, session: Session) -> None:
        """The session's token expired: end it (in the background)."""
        self._background.spawn(self.end(session, "expired"))

    async def end(self, session: Session, reason: str) -> None:
        """Withdraw every room (``revoked`` with ``reason``), then disconnect the socket."""
        if not self._sessions.is_current(session):
            return
        for name in list(session.rooms):
            if await self._rooms.leave(session, name):
                await self._sio.emit("revoked", {"topic": name, "reason": reason}, to=session.sid)
        self._metrics.withdrawals.labels(reason).inc()
        await self._disconnect(session)
