"""RegistryAuthorizer: may this caller read this topic or filter? The registry's answer, cached.

Each question is ``POST /registry/authorize {action: "read", topic|filter}`` with the
caller's own bearer token forwarded, so the registry judges the user (and the token's
scope and homes) itself. Answers (allowed or not) are cached per (token id, target) for
the ``ttl`` the registry sends; a home's answers are dropped on its
``hearth-sys/registry/homes/{home}`` event (:meth:`forget_home`), a user's on their
revocation mark (:meth:`forget_user`). An answer in flight while its home or user is
forgotten is returned but not cached, so a change is never hidden behind an old answer.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from hearth.common.errors import HearthError
from hearth.common.tokens import Caller
from hearth.common.topics import TopicError, filter_home, parse_filter

__all__ = ["Decision", "RegistryAuthorizer", "RegistryUnavailable"]

log = logging.getLogger(__name__)


class RegistryUnavailable(HearthError):
    """The registry did not answer an authorisation question (down, slow, or a 5xx)."""

    status = 503
    code = "unavailable"
    title = "Registry unavailable"


@dataclass(frozen=True, slots=True)
class Decision:
    """The registry's answer: ``allowed``, else a ``reason`` (``not_found``, ``role``...).

    ``reason`` is ``unauthorized`` when the registry refused the forwarded token itself.
    """

    allowed: bool
    reason: str | None = None
    role: str | None = None


@dataclass(slots=True)
class _Entry:
    decision: Decision
    expires: float
    home: str | None
    user: str


class RegistryAuthorizer:
    """Asks the registry whether a caller may read a topic or filter, with a TTL cache."""

    def __init__(
        self,
        registry_url: str,
        *,
        timeout: float = 5.0,
        max_entries: int = 50_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=registry_url, timeout=timeout, transport=transport)
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._home_epoch: defaultdict[str, int] = defaultdict(int)
        self._user_epoch: defaultdict[str, int] = defaultdict(int)
        self.asked = 0
        """Questions that went to the registry (cache misses)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    def __len__(self) -> int:
        return len(self._cache)

    async def may_read(self, caller: Caller, target: str) -> Decision:
        """Whether ``caller`` may read ``target`` (a topic, or a filter with ``+``/``#``).

        Raises :class:`RegistryUnavailable` when the registry cannot answer.
        """
        key = (caller.token_id, target)
        entry = self._cache.get(key)
        now = self._clock()
        if entry is not None:
            if entry.expires > now:
                self._cache.move_to_end(key)
                return entry.decision
            del self._cache[key]
        home = _home_of(target)
        epochs = (
            self._home_epoch.get(home, 0) if home else 0,
            self._user_epoch.get(caller.user_id, 0),
        )
        decision, ttl = await self._ask(caller, target)
        unchanged = epochs == (
            self._home_epoch.get(home, 0) if home else 0,
            self._user_epoch.get(caller.user_id, 0),
        )
        if ttl > 0 and unchanged and self._max_entries > 0:
            self._cache[key] = _Entry(decision, self._clock() + ttl, home, caller.user_id)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return decision

    def forget_home(self, home: str) -> None:
        """Drop every cached answer about ``home`` (and those in flight)."""
        self._home_epoch[home] += 1
        for key in [k for k, e in self._cache.items() if e.home == home]:
            del self._cache[key]

    def forget_user(self, user_id: str) -> None:
        """Drop every cached answer for ``user_id`` (and those in flight)."""
        self._user_epoch[user_id] += 1
        for key in [k for k, e in self._cache.items() if e.user == user_id]:
            del self._cache[key]

    async def _ask(self, caller: Caller, target: str) -> tuple[Decision, int]:
        kind = "filter" if ("+" in target or "#" in target) else "topic"
        self.asked += 1
        try:
            response = await self._http.post(
                "/registry/authorize",
                json={"action": "read", kind: target},
                headers={"Authorization": caller.authorization},
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"registry: {type(exc).__name__}") from None
        if response.status_code == 401:
            return Decision(False, "unauthorized"), 0
        if response.status_code == 422:
            return Decision(False, "invalid"), 0
        if response.status_code != 200:
            raise RegistryUnavailable(f"registry answered HTTP {response.status_code}")
        try:
            body = response.json()
            decision = Decision(bool(body["allowed"]), body.get("reason"), body.get("role"))
            ttl = int(body.get("ttl") or 0)
        except (ValueError, KeyError, TypeError):
            raise RegistryUnavailable("registry answered an unreadable body") from None
        return decision, max(ttl, 0)


def _home_of(target: str) -> str | None:
    try:
        return filter_home(parse_filter(target))
    except TopicError:
        return None
