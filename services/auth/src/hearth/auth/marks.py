"""Publishing users' revocation marks on the system bus, and applying them locally.

A mark (:class:`~hearth.common.messages.UserMark`) is published retained at QoS 1 on
``hearth-sys/auth/users/{user id}`` whenever a user is disabled or re-enabled, logs
out everywhere or changes their password. The mark is also applied at once to this
replica's own :class:`~hearth.common.tokens.RevocationMarks`. A mark that could not
be published (broker down) is kept and retried by :meth:`MarkPublisher.run` until it
goes out; after every (re)connect all marks are published again from the database,
so a broker that lost its retained messages gets them back.

Sends of one user's mark are serialised and always carry that user's newest mark, so
a retry can never publish a stale mark after a newer one (the retained mark would
then contradict the database), and a mark is not sent twice while in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from hearth.common.messages import UserMark
from hearth.common.mqtt import MqttConnection, MqttUnavailable
from hearth.common.tokens import RevocationMarks
from hearth.common.topics import user_mark_topic

__all__ = ["MarkPublisher", "MarkSource"]

log = logging.getLogger(__name__)

MarkSource = Callable[[], Awaitable[Iterable[tuple[str, UserMark]]]]
"""Reads every user's current mark from the database: ``[(user id, mark), ...]``."""


class MarkPublisher:
    """Publishes marks on the bus (with retries) and applies them to local marks."""

    def __init__(
        self,
        mqtt: MqttConnection | None,
        marks: RevocationMarks,
        *,
        publish_wait: float = 1.0,
        retry_interval: float = 0.5,
    ) -> None:
        self._mqtt = mqtt
        self._marks = marks
        self._publish_wait = publish_wait
        self._retry_interval = retry_interval
        self._pending: dict[str, UserMark] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._sequence = 0
        self._applied_at: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """How many marks wait to be published."""
        return len(self._pending)

    async def publish(self, user_id: str, mark: UserMark) -> bool:
        """Apply ``mark`` locally and publish it; ``False`` if it was left for a retry."""
        self._sequence += 1
        self._applied_at[user_id] = self._sequence
        self._marks.apply(user_id, mark)
        self._pending[user_id] = mark
        return await self._flush(user_id, self._publish_wait)

    async def _flush(self, user_id: str, wait: float) -> bool:
        """Send the user's newest pending mark (one send per user at a time).

        ``False`` when it could not be sent (it stays pending for a retry).
        """
        if self._mqtt is None:
            return False
        async with self._locks[user_id]:
            mark = self._pending.get(user_id)
            if mark is None:
                return True  # sent meanwhile by another caller
            try:
                await self._mqtt.publish(
                    user_mark_topic(user_id), mark.to_bytes(), qos=1, retain=True, wait=wait
                )
            except MqttUnavailable as exc:
                log.warning("user mark not published yet; will retry", extra={"error": str(exc)})
                return False
            if self._pending.get(user_id) == mark:
                del self._pending[user_id]
            return True

    async def flush_all(self, within: float) -> bool:
        """Send every pending mark, retrying for up to ``within`` seconds; whether all went out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._pending and loop.time() < deadline:
            for user_id in list(self._pending):
                await self._flush(user_id, max(0.0, deadline - loop.time()))
            if self._pending:
                await asyncio.sleep(self._retry_interval)
        return not self._pending

    async def run(self, source: MarkSource) -> None:
        """Forever: retry pending marks, and republish every mark after each (re)connect."""
        if self._mqtt is None:
            return
        seen_connects = 0
        while True:
            await asyncio.sleep(self._retry_interval)
            if not self._mqtt.connected:
                continue
            if self._mqtt.connects != seen_connects:
                read_from = self._sequence
                try:
                    marks = await source()
                except Exception:
                    log.exception("reading the users' marks failed")
                    continue
                for user_id, mark in marks:
                    if self._applied_at.get(user_id, 0) > read_from:
                        continue  # published meanwhile: the database read may be older
                    self._marks.apply(user_id, mark)
                    self._pending.setdefault(user_id, mark)
                seen_connects = self._mqtt.connects
            for user_id in list(self._pending):
                if not await self._flush(user_id, 0):
                    break
