"""RegistryClient: asks the registry whether a user may do something, and caches its answer.

Every service that acts for a user asks the registry (design.md, "Identity and access"):
realtime before a socket joins a room; the history API, commands from sockets and
automation next. The contract is :mod:`hearth.common.authorization`; this is the asking
side of it.

- Each question is ``POST /registry/authorize`` with the caller's own bearer token
  forwarded, so the registry judges the user (and the token's scope and homes) itself.
- Answers (allowed or not) are shared per (user, the token's roles, scopes and homes,
  action, target) for the ``ttl`` the registry sends, in a bounded LRU (``max_entries``):
  the registry judges exactly those, so 500 sockets of one user (a classroom signed in
  with one account) asking for one room make one registry call, not 500.
- Concurrent identical questions wait for the first one's answer (single flight): a burst
  of joins is one request in flight per question, never a queue of them at the registry.
  A refused token (``unauthorized``) is the asking token's own answer: a waiter holding
  another token asks for itself.
- A home's answers are dropped when its registry change event arrives: route
  ``hearth-sys/registry/homes/+`` to :meth:`RegistryClient.on_registry_event` (a
  :class:`~hearth.common.routing.TopicRouter` handler), or hand parsed events to
  :meth:`RegistryClient.handle_event`; a user's when their revocation mark arrives
  (:meth:`RegistryClient.forget_user`). An answer in
  flight while its home or user is forgotten is returned but not cached, so a change is
  never hidden behind an older answer.
- A registry that does not answer (down, slow, a 5xx, an unreadable body) raises
  :class:`RegistryUnavailable`: an outage, never a denial. A token the registry refuses
  (401) is the decision ``unauthorized``; a question it finds malformed (422) ``invalid``.

The HTTP side is a :class:`~hearth.common.http.ServiceClient` (injectable transport, pooled
while entered in the lifespan).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiomqtt
import httpx
from pydantic import ValidationError

from hearth.common.authorization import Action, AuthorizeAnswer, AuthorizeRequest, DenyReason, Role
from hearth.common.capabilities import Property
from hearth.common.errors import Unavailable
from hearth.common.http import ServiceClient
from hearth.common.messages import MessageError, RegistryEvent
from hearth.common.routing import payload_bytes
from hearth.common.tokens import Caller
from hearth.common.topics import TopicFilter, filter_home

__all__ = ["Decision", "DecisionReason", "RegistryClient", "RegistryUnavailable"]

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/registry/authorize"

DecisionReason = DenyReason | Literal["unauthorized"]
"""Why a decision is no: the registry's :data:`DenyReason`, or ``unauthorized`` when the
registry refused the forwarded token itself."""


class RegistryUnavailable(Unavailable):
    """The registry did not answer an authorisation question (down, slow, or a 5xx)."""

    code = "registry_unavailable"
    title = "Registry unavailable"


@dataclass(frozen=True, slots=True)
class Decision:
    """The registry's answer as a caller uses it: ``allowed``, else a ``reason``."""

    allowed: bool
    reason: DecisionReason | None = None
    role: Role | None = None
    capability: Property | None = None

    @classmethod
    def of(cls, answer: AuthorizeAnswer) -> Decision:
        """The decision an :class:`AuthorizeAnswer` carries."""
        return cls(answer.allowed, answer.reason, answer.role, answer.capability)


@dataclass(slots=True)
class _Entry:
    decision: Decision
    expires: float
    home: str | None
    user: str


_Key = tuple[
    str,  # user id
    frozenset[str],  # the token's roles
    frozenset[str],  # the token's scopes
    frozenset[str] | None,  # the token's homes (API-key tokens)
    Action,
    str | None,  # the target: topic, filter or home
    str | None,
    str | None,
]


@dataclass(slots=True)
class _Flight:
    """A question in flight: the task asking it, who asked first, what it is about."""

    task: asyncio.Task[tuple[Decision, int]]
    token_id: str
    home: str | None
    user: str


class RegistryClient(ServiceClient):
    """Asks ``POST /registry/authorize`` (see the module docstring), with a TTL cache."""

    name = "the registry"
    unavailable = RegistryUnavailable

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        max_entries: int = 50_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[_Key, _Entry] = OrderedDict()
        self._flights: dict[_Key, _Flight] = {}
        self._home_epoch: defaultdict[str, int] = defaultdict(int)
        self._user_epoch: defaultdict[str, int] = defaultdict(int)
        self.asked = 0
        """Questions that went to the registry (cache misses)."""
        self.shared = 0
        """Questions answered by a question already in flight (single flight)."""

    def __len__(self) -> int:
        return len(self._cache)

    # ------------------------------------------------------------------ questions

    async def may_read(self, caller: Caller, target: TopicFilter) -> Decision:
        """Whether ``caller`` may read ``target`` (a topic, or a filter with ``+``/``#``)."""
        return await self.authorize(caller, Action.READ, target)

    async def authorize(self, caller: Caller, action: Action, target: TopicFilter) -> Decision:
        """Whether ``caller`` may do ``action`` on a topic or filter.

        A target without wildcards is asked as a ``topic``, else as a ``filter``. Raises
        :class:`RegistryUnavailable` when the registry cannot answer.
        """
        try:
            if target.has_wildcards:
                question = AuthorizeRequest(action=action, filter=target.filter)
            else:
                question = AuthorizeRequest(action=action, topic=target.filter)
        except ValidationError:  # longer than the registry accepts: it would answer 422
            return Decision(False, "invalid")
        return await self._decide(caller, question, filter_home(target))

    async def authorize_home(self, caller: Caller, action: Action, home: str) -> Decision:
        """Whether ``caller`` may do ``action`` in ``home`` (a home slug)."""
        try:
            question = AuthorizeRequest(action=action, home=home)
        except ValidationError:
            return Decision(False, "invalid")
        return await self._decide(caller, question, home)

    # ------------------------------------------------------------------ invalidation

    def on_registry_event(self, message: aiomqtt.Message) -> RegistryEvent | None:
        """A message of ``hearth-sys/registry/homes/+``: drop its home's answers.

        The parsed event, or ``None`` when the payload is not one (logged, never raised) or
        changes nobody's rights (a presence event).
        """
        try:
            event = RegistryEvent.from_bytes(payload_bytes(message))
        except MessageError as exc:
            log.warning("ignoring a malformed registry event", extra={"error": str(exc)})
            return None
        if not event.changes_rights:
            return None  # presence: nobody's rights changed
        self.handle_event(event)
        return event

    def handle_event(self, event: RegistryEvent) -> None:
        """A registry change event: drop every cached answer about its home (not for presence)."""
        if event.changes_rights:
            self.forget_home(event.home)

    def forget_home(self, home: str) -> None:
        """Drop every cached answer about ``home`` (and those in flight)."""
        self._home_epoch[home] += 1
        for key in [k for k, e in self._cache.items() if e.home == home]:
            del self._cache[key]
        for key in [k for k, f in self._flights.items() if f.home == home]:
            del self._flights[key]  # later questions ask again; the waiters get its answer

    def forget_user(self, user_id: str) -> None:
        """Drop every cached answer for ``user_id`` (and those in flight)."""
        self._user_epoch[user_id] += 1
        for key in [k for k, e in self._cache.items() if e.user == user_id]:
            del self._cache[key]
        for key in [k for k, f in self._flights.items() if f.user == user_id]:
            del self._flights[key]

    # ------------------------------------------------------------------ the cache

    def _epochs(self, home: str | None, user_id: str) -> tuple[int, int]:
        home_epoch = self._home_epoch.get(home, 0) if home is not None else 0
        return home_epoch, self._user_epoch.get(user_id, 0)

    async def _decide(
        self, caller: Caller, question: AuthorizeRequest, home: str | None
    ) -> Decision:
        key: _Key = (
            caller.user_id,
            caller.roles,
            caller.scopes,
            caller.homes,
            question.action,
            question.topic,
            question.filter,
            question.home,
        )
        entry = self._cache.get(key)
        if entry is not None:
            if entry.expires > self._clock():
                self._cache.move_to_end(key)
                return entry.decision
            del self._cache[key]
        flight = self._flights.get(key)
        if flight is None:
            flight = self._take_off(key, caller, question, home)
        else:
            self.shared += 1
        # Shielded: a caller that goes away (its socket closed) never cancels the others'.
        decision, _ = await asyncio.shield(flight.task)
        if decision.reason == "unauthorized" and flight.token_id != caller.token_id:
            return (await self._ask(caller, question))[0]  # that token's answer, not ours
        return decision

    def _take_off(
        self, key: _Key, caller: Caller, question: AuthorizeRequest, home: str | None
    ) -> _Flight:
        """Ask ``question`` in a task of its own; its answer is cached when it lands."""
        epochs = self._epochs(home, caller.user_id)
        task = asyncio.get_running_loop().create_task(self._ask(caller, question))
        flight = _Flight(task, caller.token_id, home, caller.user_id)
        self._flights[key] = flight

        def landed(task: asyncio.Task[tuple[Decision, int]]) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if task.cancelled() or task.exception() is not None:
                return
            decision, ttl = task.result()
            unchanged = epochs == self._epochs(home, caller.user_id)
            if ttl > 0 and unchanged and self._max_entries > 0:
                self._cache[key] = _Entry(decision, self._clock() + ttl, home, caller.user_id)
                while len(self._cache) > self._max_entries:
                    self._cache.popitem(last=False)

        task.add_done_callback(landed)
        return flight

    async def _ask(self, caller: Caller, question: AuthorizeRequest) -> tuple[Decision, int]:
        self.asked += 1
        response = await self.request(
            "POST",
            AUTHORIZE_PATH,
            json=question.model_dump(mode="json", exclude_none=True),
            headers={"Authorization": caller.authorization},
        )
        if response.status_code == 401:
            return Decision(False, "unauthorized"), 0
        if response.status_code == 422:
            return Decision(False, "invalid"), 0
        if response.status_code != 200:
            raise RegistryUnavailable(f"the registry answered HTTP {response.status_code}")
        try:
            answer = AuthorizeAnswer.model_validate(self.json_object(response))
        except ValidationError:
            raise RegistryUnavailable("the registry answered an unreadable body") from None
        return Decision.of(answer), max(answer.ttl, 0)
