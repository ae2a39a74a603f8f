"""The MQTT connection a service holds for its lifetime: reconnect, resubscribe, birth and will.

aiomqtt 2.x (pinned ``>=2.5,<3``) does not reconnect by itself; this module loops
around ``async with aiomqtt.Client(...)`` in a background task. A service builds it in
``create_app`` (into its state) and its lifespan enters it::

    router = TopicRouter()
    router.route(USER_MARKS_FILTER, on_user_mark)
    mqtt = MqttConnection(MqttConfig.from_settings(settings), router=router)  # create_app

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_state(app, XState).mqtt:  # connects in the background
            yield

What a :class:`MqttConnection` does:

- connects with MQTT 5 as ``config.client_id`` (``<service>-<replica>``), with
  the retained will ``{"state": "offline", "reason": "will"}`` on
  ``hearth-sys/services/{service}/{replica}``; a persistent session when
  ``clean_start`` is false and ``session_expiry`` is set (without
  ``SessionExpiryInterval`` an MQTT 5 broker keeps nothing);
- on every (re)connect: subscribes to every filter it holds, then publishes the
  retained birth ``{"state": "online", "reason": "connected", "ts": ...}``, then
  reports itself connected;
- hands each message to ``on_message`` one at a time, in arrival order; an
  exception from the handler is logged and counted (``handler_errors``), never
  ends the loop (aiomqtt 2.x acknowledges QoS 1 on receipt: messages received
  but not yet handled when the connection drops or closes are lost);
- takes what arrived together in one go (:mod:`hearth.common.mqtt_intake`:
  every packet the socket holds is read at once, and every message received is
  dispatched before the loop turns) and, with a router, then calls
  :meth:`TopicRouter.caught_up`: what a handler gathered from messages that
  arrived together goes out then (alone, a message is followed by it at once);
- when the connection fails or drops, retries after an exponential back-off
  with jitter (``reconnect_min`` doubling up to ``reconnect_max``; each wait is
  drawn between half the step and the step), forever, until closed;
- on a clean exit publishes the retained ``{"state": "offline", "reason":
  "disconnect"}`` and disconnects (so the broker does not send the will).

Entering the context does not wait for the broker: a service starts while the
broker is down and reports it on ``/readyz`` through :attr:`MqttConnection.connected`.

:meth:`MqttConnection.publish` waits for a connection up to ``publish_timeout``
seconds (per call: ``wait=``; ``0`` fails at once) and raises
:class:`MqttUnavailable` when none came, or when the connection dropped before a
QoS 1 publish was acknowledged: the caller decides whether to retry (a retry may
duplicate). Under aiomqtt 2.x a publish the broker denies (MQTT 5 reason 0x87)
still looks successful.

The connection dispatches every message to one handler. A service that listens to
several things gives it a :class:`~hearth.common.routing.TopicRouter` instead
(``router=``): the connection subscribes to the router's filters when it starts and hands
every message to it. Subscriptions made at run time with an MQTT 5 subscription
identifier (``subscribe(f, identifier=n)``) carry it in
``message.properties.SubscriptionIdentifier`` (a list: the broker sends one copy per
matching subscription, each carrying its own identifier); the router's ``otherwise``
handler routes those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hearth.common.errors import HearthError
from hearth.common.messages import StatusReason, service_status_payload
from hearth.common.mqtt_intake import IntakeQueue, read_all_available, take_waiting
from hearth.common.mqtt_tls import tls_context
from hearth.common.topics import service_status_topic

if TYPE_CHECKING:
    from hearth.common.routing import TopicRouter
    from hearth.common.settings import HearthSettings

__all__ = [
    "MAX_SUBSCRIPTION_ID",
    "MessageHandler",
    "MqttConfig",
    "MqttConnection",
    "MqttRefused",
    "MqttUnavailable",
    "backoff_delays",
]

log = logging.getLogger(__name__)

MAX_SUBSCRIPTION_ID = 268_435_455
"""The largest MQTT 5 subscription identifier (a variable byte integer: 1 to 2^28 - 1)."""

TOGETHER = 4096
"""Messages already received dispatched at most after one before the loop turns."""

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]
"""What :class:`MqttConnection` calls with each message it receives."""


class MqttUnavailable(HearthError):
    """No broker connection: none came within the wait, or it dropped during the call."""

    status = 503
    code = "mqtt_unavailable"
    title = "Message broker unavailable"


class MqttRefused(HearthError):
    """The broker refused a subscription (MQTT 5 reason code 0x80 or above)."""

    code = "mqtt_refused"
    title = "Refused by the message broker"


@dataclass(frozen=True)
class MqttConfig:
    """How a service replica connects to the broker.

    ``session_expiry`` (seconds) with ``clean_start=False`` gives a persistent
    session: subscriptions and QoS 1 messages are kept that long while the
    replica is away. ``reconnect_min``/``reconnect_max`` bound the back-off
    between connection attempts; ``publish_timeout`` is how long ``publish``
    waits for a connection; ``timeout`` bounds each broker round trip
    (CONNACK, SUBACK, PUBACK). ``receive_maximum`` caps the QoS 1 messages in
    flight toward this client (MQTT 5 Receive Maximum; broker default otherwise).
    """

    host: str
    port: int
    service: str
    replica: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = ""
    clean_start: bool = True
    session_expiry: int = 0
    keepalive: int = 30
    receive_maximum: int | None = None
    reconnect_min: float = 0.1
    reconnect_max: float = 5.0
    publish_timeout: float = 5.0
    timeout: float = 10.0
    ca_file: Path | None = None
    """MQTT over TLS trusting this CA (PEM); None: plain MQTT."""

    def __post_init__(self) -> None:
        if not self.client_id:
            object.__setattr__(self, "client_id", f"{self.service}-{self.replica}")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        if self.session_expiry < 0:
            raise ValueError("session_expiry must be >= 0")

    @classmethod
    def from_settings(cls, settings: HearthSettings, **overrides: Any) -> MqttConfig:
        """From settings: login ``svc-<service>-<replica>``, bound id ``<service>-<replica>``."""
        config = cls(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            service=settings.service,
            replica=settings.replica,
            username=settings.mqtt_username or None,
            password=settings.mqtt_password.get_secret_value() or None,
            client_id=settings.client_id,
            ca_file=settings.mqtt_ca_file,
        )
        return replace(config, **overrides) if overrides else config

    @property
    def status_topic(self) -> str:
        """Where this replica's birth and will go: ``hearth-sys/services/{service}/{replica}``."""
        return service_status_topic(self.service, self.replica)


def backoff_delays(
    minimum: float, maximum: float, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless waits between connection attempts: doubling from ``minimum`` to ``maximum``.

    Each wait is drawn between half its step and the step (jitter), so replicas
    that lost the broker together do not knock on it together.
    """
    draw = rng or random.Random()
    step = minimum
    while True:
        yield draw.uniform(step / 2, step)
        step = min(step * 2, maximum)


class MqttConnection:
    """A service's long-lived broker connection (see the module docstring).

    ``subscriptions`` are ``(filter, qos)`` pairs subscribed on every connect;
    :meth:`subscribe` and :meth:`unsubscribe` change the set at run time (optionally
    with a subscription identifier per filter).
    ``on_message`` receives every message of every subscription. With ``router``
    instead, the router's routes are added to the subscriptions when the connection
    starts (routes may be added until then) and the router receives every message.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        subscriptions: Iterable[tuple[str, int]] = (),
        on_message: MessageHandler | None = None,
        router: TopicRouter | None = None,
    ) -> None:
        if router is not None and on_message is not None:
            raise ValueError("give on_message or router, not both")
        self.config = config
        self._router = router
        if router is not None:
            on_message = router.dispatch
        self._subscriptions: dict[str, int] = dict(subscriptions)
        self._identifiers: dict[str, int] = {}  # filter -> MQTT 5 subscription identifier
        self._active: dict[str, tuple[int, int | None]] = {}  # as subscribed on this connection
        self._on_message = on_message
        self._intake = IntakeQueue()  # the received messages of the current attempt
        self._client: aiomqtt.Client | None = None  # set while connected (ready)
        self._session: aiomqtt.Client | None = None  # set from CONNACK to disconnect
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connects = 0
        """How many times the connection was established (1 on the first connect)."""
        self.handler_errors = 0
        """How many messages the handler raised on."""

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up (subscribed, birth published): for ``/readyz``."""
        return self._connected.is_set()

    async def readiness_check(self) -> None:
        """A ``/readyz`` check (``add_readiness_check``): fails while not connected."""
        if not self.connected:
            raise ConnectionError("not connected to the broker")

    async def wait_connected(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until connected; ``False`` if ``timeout`` seconds passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    @property
    def subscriptions(self) -> Mapping[str, int]:
        """The filters (with their QoS) subscribed on every connect."""
        return dict(self._subscriptions)

    @property
    def identifiers(self) -> Mapping[str, int]:
        """The subscription identifier of each filter subscribed with one."""
        return dict(self._identifiers)

    def _wanted(self, topic_filter: str) -> tuple[int, int | None]:
        return self._subscriptions[topic_filter], self._identifiers.get(topic_filter)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start the background connection task (``async with`` does this)."""
        if self._task is not None:
            raise RuntimeError("MqttConnection already started")
        if self._router is not None:
            for topic_filter, qos in self._router.subscriptions:
                self._subscriptions.setdefault(topic_filter, qos)
        self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.config.client_id}")

    async def close(self) -> None:
        """Publish the retained offline status if connected, disconnect, stop the task."""
        if self._closing:
            return
        self._closing = True  # from here on no birth is sent (see _on_connect)
        client = self._session
        if client is not None:
            try:
                await client.publish(
                    self.config.status_topic,
                    service_status_payload(StatusReason.DISCONNECT),
                    qos=1,
                    retain=True,
                    timeout=min(self.config.timeout, 2.0),
                )
            except aiomqtt.MqttError as exc:
                log.warning("mqtt %s: offline status not published: %s", self.config.client_id, exc)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # close() itself was cancelled: pass it on

    # ------------------------------------------------------------------ operations

    async def _client_when_connected(self, wait: float) -> aiomqtt.Client:
        if self._closing:
            raise MqttUnavailable("the broker connection is closed")
        if not await self.wait_connected(wait if wait > 0 else 0.0) or self._client is None:
            raise MqttUnavailable(f"not connected to the broker (waited {wait:g} s)")
        return self._client

    async def publish(
        self,
        topic: str,
        payload: bytes | str | None,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        *,
        wait: float | None = None,
    ) -> None:
        """Publish; for QoS 1 return once the broker acknowledged it.

        Waits up to ``wait`` seconds (default ``config.publish_timeout``) for a
        connection, then raises :class:`MqttUnavailable`; also raises it when the
        connection drops before the acknowledgement, and at once after :meth:`close`.
        """
        client = await self._client_when_connected(
            self.config.publish_timeout if wait is None else wait
        )
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        except aiomqtt.MqttError as exc:
            raise MqttUnavailable(f"publish to {topic} failed: {exc}") from None

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None:
        """Add a filter to the set; subscribe now if connected (else on the next connect).

        ``identifier`` (1 to 268,435,455) is sent as the MQTT 5 subscription identifier,
        on this and every later connect; messages through this subscription carry it in
        ``message.properties.SubscriptionIdentifier``. Raises :class:`MqttRefused` when
        the broker refuses it (the filter is then dropped from the set).
        """
        if identifier is not None and not 0 < identifier <= MAX_SUBSCRIPTION_ID:
            raise ValueError(f"subscription identifier {identifier} is out of range")
        self._subscriptions[topic_filter] = qos
        if identifier is None:
            self._identifiers.pop(topic_filter, None)
        else:
            self._identifiers[topic_filter] = identifier
        client = self._client
        if client is None or not self._connected.is_set():
            return
        try:
            self._active[topic_filter] = (qos, identifier)
            await self._subscribe(client, topic_filter, qos, identifier)
        except MqttRefused:
            self._subscriptions.pop(topic_filter, None)
            self._identifiers.pop(topic_filter, None)
            self._active.pop(topic_filter, None)
            raise
        except aiomqtt.MqttError:
            log.info(
                "mqtt %s: subscribe %s deferred to the next connect",
                self.config.client_id,
                topic_filter,
            )

    async def unsubscribe(self, topic_filter: str) -> None:
        """Remove a filter from the set; unsubscribe now if connected."""
        self._identifiers.pop(topic_filter, None)
        if self._subscriptions.pop(topic_filter, None) is None:
            return
        client = self._client
        if client is None or not self._connected.is_set():
            return
        self._active.pop(topic_filter, None)
        with contextlib.suppress(aiomqtt.MqttError):  # a lost connection forgets it anyway
            await client.unsubscribe(topic_filter, timeout=self.config.timeout)

    async def _subscribe(
        self, client: aiomqtt.Client, topic_filter: str, qos: int, identifier: int | None = None
    ) -> None:
        properties = None
        if identifier is not None:
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = identifier
        granted = await client.subscribe(
            topic_filter, qos, properties=properties, timeout=self.config.timeout
        )
        for code in granted:
            value = code if isinstance(code, int) else code.value
            if value >= 0x80:
                raise MqttRefused(f"broker refused subscription to {topic_filter} ({code})")

    # ------------------------------------------------------------------ the loop

    def _client_for_attempt(self) -> aiomqtt.Client:
        config = self.config
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if config.session_expiry:
            properties.SessionExpiryInterval = config.session_expiry
        if config.receive_maximum is not None:
            properties.ReceiveMaximum = config.receive_maximum
        will = aiomqtt.Will(
            config.status_topic,
            service_status_payload(StatusReason.WILL),
            qos=1,
            retain=True,
        )
        self._intake = IntakeQueue()
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=config.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            clean_start=config.clean_start,
            keepalive=config.keepalive,
            timeout=config.timeout,
            properties=properties,
            tls_context=tls_context(config.ca_file),
            queue_type=cast("type[asyncio.Queue[aiomqtt.Message]]", self._intake),
        )
        read_all_available(client)
        return client

    async def _sync_subscriptions(self, client: aiomqtt.Client) -> None:
        """Make this connection's subscriptions match the wanted set (it may change meanwhile)."""
        while True:
            extra = [f for f in self._active if f not in self._subscriptions]
            missing = [f for f in self._subscriptions if self._active.get(f) != self._wanted(f)]
            if not extra and not missing:
                return
            for topic_filter in extra:
                del self._active[topic_filter]
                await client.unsubscribe(topic_filter, timeout=self.config.timeout)
            for topic_filter in missing:
                if topic_filter not in self._subscriptions:  # dropped while we awaited
                    continue
                qos, identifier = self._active[topic_filter] = self._wanted(topic_filter)
                try:
                    await self._subscribe(client, topic_filter, qos, identifier)
                except MqttRefused as exc:
                    log.error("mqtt %s: %s", self.config.client_id, exc)

    async def _on_connect(self, client: aiomqtt.Client) -> None:
        """Subscribe, publish the birth, catch up with changes made meanwhile."""
        self._active = {}
        await self._sync_subscriptions(client)
        if self._closing:  # close() is publishing "offline": a late birth must not follow it
            return
        await client.publish(
            self.config.status_topic,
            service_status_payload(StatusReason.CONNECTED),
            qos=1,
            retain=True,
        )
        await self._sync_subscriptions(client)  # returns without awaiting when nothing changed

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        if self._on_message is None:
            return
        try:
            await self._on_message(message)
        except Exception:
            self.handler_errors += 1
            log.exception("mqtt %s: handler failed on %s", self.config.client_id, message.topic)

    async def _dispatch_together(self, message: aiomqtt.Message) -> None:
        """``message`` and every message received with it (at most ``TOGETHER`` more)."""
        await self._dispatch(message)
        for _ in range(TOGETHER):
            waiting = take_waiting(self._intake.queue)
            if waiting is None:
                break
            await self._dispatch(waiting)
        if self._router is not None:
            try:
                self._router.caught_up()
            except Exception:
                self.handler_errors += 1
                log.exception("mqtt %s: caught-up handler failed", self.config.client_id)

    async def _run(self) -> None:
        config = self.config
        delays = backoff_delays(config.reconnect_min, config.reconnect_max)
        while not self._closing:
            client = self._client_for_attempt()
            try:
                async with client:
                    self._session = client
                    await self._on_connect(client)
                    self._client = client
                    self.connects += 1
                    self._connected.set()
                    delays = backoff_delays(config.reconnect_min, config.reconnect_max)
                    log.info(
                        "mqtt %s: connected to %s:%d", config.client_id, config.host, config.port
                    )
                    async for message in client.messages:
                        await self._dispatch_together(message)
            except aiomqtt.MqttError as exc:
                reason = str(exc) or type(exc).__name__
            except Exception as exc:  # never let the connection task die
                log.exception("mqtt %s: unexpected error", config.client_id)
                reason = type(exc).__name__
            else:
                reason = "connection closed"
            finally:
                self._connected.clear()
                self._client = self._session = None
            if self._closing:
                break
            delay = next(delays)
            log.warning(
                "mqtt %s: no connection to %s:%d (%s); retrying in %.2f s",
                config.client_id,
                config.host,
                config.port,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
