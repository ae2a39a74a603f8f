"""Sessions: the connected sockets, who each one is, and when its token runs out.

- **connect**: the token in ``auth: {token}`` is verified (JWKS and revocation marks); a
  session is made with its own :class:`~hearth.realtime.outbox.Outbox` (every room message
  to the socket goes through it onto the socket's send queue, ``queues``).
- **reauth**: a newer token of the same user replaces the session's caller and moves its
  expiry; a token of another user is refused.
- **expiry**: the session ends when its token expires (``exp`` plus the verifier's leeway)
  unless ``reauth`` came first: ``on_expired(session)`` runs (the withdrawal of every room
  and the disconnection are :mod:`hearth.realtime.withdrawal`'s business).
- **slow sockets**: a socket that cannot keep up gets the latest value of each topic
  (conflation, see :mod:`hearth.realtime.outbox`); one whose outbox still overflows
  (``max_backlog`` distinct undelivered messages) is handed to ``on_slow(session)`` to be
  disconnected.

A session also keeps the names of its rooms (joining and leaving are
:mod:`hearth.realtime.rooms`'s business) and a lock that orders its own ``subscribe`` and
``unsubscribe`` events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.common.errors import KeysUnavailable, TokenError, TokenMissing
from hearth.common.tokens import Caller, TokenVerifier
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.outbox import Outbox
from hearth.realtime.ports import SendQueues, SocketServer

__all__ = ["OtherUser", "Session", "Sessions"]

log = logging.getLogger(__name__)

SessionCallback = Callable[["Session"], None]


class OtherUser(Exception):
    """A ``reauth`` token of another user than the session's."""


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


class Sessions:
    """The sessions of this replica by socket id and by user (see the module docstring)."""

    def __init__(
        self,
        sio: SocketServer,
        queues: SendQueues,
        verifier: TokenVerifier,
        metrics: RealtimeMetrics,
        *,
        on_expired: SessionCallback,
        on_slow: SessionCallback,
        max_backlog: int = 10_000,
    ) -> None:
        self._sio = sio
        self._verifier = verifier
        self._metrics = metrics
        self._on_expired = on_expired
        self._on_slow = on_slow
        self._max_backlog = max_backlog
        self._queues = queues
        self._by_sid: dict[str, Session] = {}
        self._by_user: defaultdict[str, set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._by_sid)

    def get(self, sid: str) -> Session | None:
        """The session of socket ``sid``, if connected."""
        return self._by_sid.get(sid)

    def is_current(self, session: Session) -> bool:
        """Whether ``session`` is still connected (not forgotten or replaced)."""
        return self._by_sid.get(session.sid) is session

    def of_user(self, user_id: str) -> list[Session]:
        """The sessions of ``user_id``."""
        return [self._by_sid[sid] for sid in self._by_user.get(user_id, ()) if sid in self._by_sid]

    # ------------------------------------------------------------------ life

    async def connect(self, sid: str, auth: object) -> Session:
        """Verify the token of a new socket; raises ``TokenError`` or ``KeysUnavailable``."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            self._metrics.refusals.labels("connect", "unauthorized").inc()
            raise TokenMissing("no token in the connect payload (auth: {token})")
        try:
            caller = await self._verifier.verify(token)
        except TokenError:
            self._metrics.refusals.labels("connect", "unauthorized").inc()
            raise
        except KeysUnavailable:
            self._metrics.refusals.labels("connect", "unavailable").inc()
            raise
        session = Session(sid, caller)
        session.outbox = self._outbox(session)
        self._by_sid[sid] = session
        self._by_user[caller.user_id].add(sid)
        self._schedule_expiry(session)
        self._metrics.connections.set(len(self._by_sid))
        return session

    def forget(self, sid: str) -> Session | None:
        """Forget a socket that is gone: its expiry and its outbox end; the session, if any."""
        session = self._by_sid.pop(sid, None)
        if session is None:
            return None
        if session.expiry is not None:
            session.expiry.cancel()
        if session.outbox is not None:
            session.outbox.close()
        sids = self._by_user.get(session.caller.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[session.caller.user_id]
        self._metrics.connections.set(len(self._by_sid))
        return session

    def close(self) -> None:
        """Cancel every expiry timer and outbox (the app is stopping)."""
        for session in self._by_sid.values():
            if session.expiry is not None:
                session.expiry.cancel()
            if session.outbox is not None:
                session.outbox.close()

    # ------------------------------------------------------------------ tokens

    async def verify(self, session: Session) -> None:
        """Verify the session's token again (marks included); raises like ``connect``."""
        await self._verifier.verify(session.caller.token)

    async def reauth(self, session: Session, token: str) -> Caller:
        """Replace the session's caller with a newer token of the same user.

        Raises ``TokenError``, ``KeysUnavailable`` or :class:`OtherUser`; the session is
        unchanged then.
        """
        caller = await self._verifier.verify(token)
        if caller.user_id != session.caller.user_id:
            raise OtherUser("the token is another user's")
        session.caller = caller
        self._schedule_expiry(session)
        return caller

    def _schedule_expiry(self, session: Session) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
        delay = session.caller.expires_at + self._verifier.leeway - time.time()
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(max(delay, 0.0), self._on_expired, session)

    # ------------------------------------------------------------------ outboxes

    def _outbox(self, session: Session) -> Outbox:
        sid = session.sid
        queues = self._queues
        bursts = self._metrics.bursts

        def write(event: str, data: Any) -> bool:
            if event == "messages":
                bursts.inc()
            return queues.write(sid, event, data)

        def overflow(backlog: int) -> None:
            log.warning(
                "disconnecting a slow socket: its backlog is full",
                extra={"sid": sid, "user": session.caller.user_id, "backlog": backlog},
            )
            self._metrics.slow_disconnects.inc()
            self._on_slow(session)

        return Outbox(
            write,
            lambda: queues.depth(sid),
            capacity=self._max_backlog,
            on_overflow=overflow,
            on_conflated=self._metrics.conflated.inc,
        )
