"""RevocationMarks: each user's ``not_before`` and ``disabled`` mark, fed from the system bus.

auth publishes a retained :class:`~hearth.common.messages.UserMark` on
``hearth-sys/auth/users/{user id}`` when a user logs out everywhere or is
disabled; every service subscribes to ``USER_MARKS_FILTER`` and feeds each
message to :meth:`RevocationMarks.handle_message`. The
:class:`~hearth.common.tokens.TokenVerifier` then refuses tokens issued before
the mark, and every token of a disabled user.
"""

from __future__ import annotations

import logging
import threading

from hearth.common.messages import MessageError, UserMark
from hearth.common.topics import USER_MARKS_FILTER, TopicError, parse_user_mark_topic

__all__ = ["USER_MARKS_FILTER", "RevocationMarks", "UserMark"]

logger = logging.getLogger(__name__)


class RevocationMarks:
    """The latest mark of every user that has one, by user id.

    Safe to feed from an MQTT client's own thread while the event loop reads it.
    """

    def __init__(self) -> None:
        self._marks: dict[str, UserMark] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._marks)

    def __repr__(self) -> str:
        return f"RevocationMarks({len(self._marks)} users)"

    def get(self, user_id: str) -> UserMark | None:
        """The mark of ``user_id``, or ``None`` when the user has none."""
        return self._marks.get(user_id)

    def apply(self, user_id: str, mark: UserMark | None) -> None:
        """Record ``mark`` for ``user_id``; ``None`` clears the user's mark."""
        with self._lock:
            if mark is None:
                self._marks.pop(user_id, None)
            else:
                self._marks[user_id] = mark

    def handle_message(self, topic: str, payload: bytes) -> bool:
        """Apply one message from ``hearth-sys/auth/users/{user id}``.

        An empty payload (a cleared retained message) clears the user's mark.
        Returns whether the message was applied; a message whose topic or
        payload does not parse is logged and ignored, never raised, so one bad
        message cannot stop a subscriber loop.
        """
        try:
            user_id = parse_user_mark_topic(topic)
            mark = UserMark.from_bytes(payload) if payload else None
        except (TopicError, MessageError) as exc:
            logger.warning(
                "ignoring a malformed user mark", extra={"topic": topic, "error": str(exc)}
            )
            return False
        self.apply(user_id, mark)
        return True
