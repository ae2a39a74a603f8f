"""TopicRouter: which handler gets a broker message, decided by the filter its topic matches.

A service's broker connection (:class:`hearth.common.mqtt.MqttConnection`) hands every
message to one callable; a service that listens to several things declares them here
instead of writing its own ``if topic...`` chain::

    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)          # hearth-sys/auth/users/+
    router.route(REGISTRY_HOMES_FILTER, on_registry_event)  # hearth-sys/registry/homes/+
    router.otherwise(rooms.deliver)                         # the rest (by subscription id)
    mqtt = MqttConnection(config, subscriptions=router.subscriptions,
                          on_message=router.dispatch)

- Each route's filter is parsed once, when it is added (a bad filter fails at startup).
- A message goes to every route whose filter matches its topic, in the order the routes
  were added (as MQTT itself delivers one copy per matching subscription); a message no
  route matches goes to the ``otherwise`` handler, if any.
- :attr:`TopicRouter.subscriptions` are the routes' ``(filter, qos)`` pairs: subscribe
  with exactly what is routed.
- Handlers may be plain functions or coroutines; :func:`payload_bytes` gives a message's
  payload as bytes (aiomqtt types it loosely).
- ``caught_up`` handlers (:meth:`TopicRouter.when_caught_up`) run when the connection has
  handed over every message it received so far: a handler that gathers what arrives
  together (realtime's fan-out, one frame per room per batch) sends it then, so an idle
  connection adds no delay and a busy one gathers what the broker sent meanwhile.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt

from hearth.common.topics import TopicFilter, parse_filter

__all__ = ["Handler", "TopicRouter", "payload_bytes"]

Handler = Callable[[aiomqtt.Message], Awaitable[None] | None]
"""What a route calls with a message: a function or a coroutine function."""


def payload_bytes(message: aiomqtt.Message) -> bytes:
    """The message's payload as bytes (an empty payload, a cleared retained one, is ``b""``)."""
    payload = message.payload
    return bytes(payload) if isinstance(payload, bytes | bytearray) else b""


@dataclass(frozen=True, slots=True)
class _Route:
    topic_filter: TopicFilter
    qos: int
    handler: Handler


class TopicRouter:
    """Routes broker messages to handlers by topic filter (see the module docstring)."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._otherwise: Handler | None = None
        self._caught_up: list[Callable[[], None]] = []

    def route(self, topic_filter: str, handler: Handler, *, qos: int = 1) -> None:
        """Send messages matching ``topic_filter`` to ``handler`` (and subscribe to it)."""
        self._routes.append(_Route(parse_filter(topic_filter), qos, handler))

    def otherwise(self, handler: Handler) -> None:
        """Send messages no route matches to ``handler`` (one fallback per router)."""
        if self._otherwise is not None:
            raise ValueError("the router already has an otherwise handler")
        self._otherwise = handler

    def when_caught_up(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever no received message is left to dispatch (see above)."""
        self._caught_up.append(callback)

    def caught_up(self) -> None:
        """The connection dispatched every message it holds: run the ``caught_up`` callbacks."""
        for callback in self._caught_up:
            callback()

    @property
    def subscriptions(self) -> list[tuple[str, int]]:
        """``(filter, qos)`` of every route, for the connection to subscribe to."""
        return [(str(route.topic_filter), route.qos) for route in self._routes]

    async def dispatch(self, message: aiomqtt.Message) -> None:
        """Hand ``message`` to every matching route's handler, else to ``otherwise``."""
        topic = str(message.topic)
        matched = False
        for route in self._routes:
            if route.topic_filter.matches(topic):
                matched = True
                await _call(route.handler, message)
        if not matched and self._otherwise is not None:
            await _call(self._otherwise, message)


async def _call(handler: Handler, message: aiomqtt.Message) -> None:
    result = handler(message)
    if inspect.isawaitable(result):
        await result
