"""The telemetry consumer: a paho-mqtt MQTT 5 client that acknowledges only when told to.

Why paho and not aiomqtt (which the other services use through
``hearth.common.mqtt.MqttConnection``): aiomqtt 2.x sends the PUBACK of a QoS 1
message as soon as it arrives, before the application has done anything with it. A
replica that dies between that PUBACK and its database commit would lose every
message in flight: the broker considers them delivered. paho-mqtt 2.x has
``manual_ack=True``: nothing is acknowledged until ``client.ack(mid, qos)``, which
ingest calls only after the batch holding the message is committed, in receive
order. A replica killed at any moment therefore loses nothing: whatever it had not
acknowledged is redelivered by the broker (to the same persistent session when it
comes back) and deduplicated on the way in.

The session:

- MQTT 5, client id ``ingest-<replica>`` (stable per replica), ``clean_start=False``
  and a ``SessionExpiryInterval`` (without it an MQTT 5 broker keeps nothing), so the
  broker queues telemetry while the replica is away;
- Receive Maximum = ``settings.receive_maximum`` (10,000): the QoS 1 messages the
  broker may have unacknowledged toward us; it must cover a batch being committed
  plus the next one filling (the broker's own queue holds the rest, up to 200,000);
- the shared subscription ``$share/ingest/hearth/+/+/telemetry/#`` at QoS 1, and the
  system bus filters (``system_filters``: registry events, users' marks) at QoS 0, not
  shared, in one SUBSCRIBE (re)made on every connect; system messages go to
  ``on_system`` (:class:`hearth.ingest.bus.SystemBus`), never to the inbox;
- with a ``catalogue`` (:class:`hearth.ingest.catalogue.DeviceCatalogue`), the same
  SUBSCRIBE also takes the devices' retained capability snapshots and the replica's own
  barrier topic (QoS 0); after the SUBACK the consumer publishes the connection's barrier
  token there. Snapshots and barriers are handed to the catalogue on paho's thread, in
  the order they arrive; :meth:`report_discovered` publishes a discovered metric;
- the retained will ``{"state":"offline","reason":"will"}`` and the retained birth on
  ``hearth-sys/services/ingest/<replica>``; a clean stop publishes ``disconnect``.

paho runs its network loop (and reconnects) in its own thread; callbacks run there
and only hand deliveries to the :class:`~hearth.ingest.batcher.Inbox`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hearth.common.capability_feed import DiscoveredMetric
from hearth.common.messages import StatusReason, service_status_payload
from hearth.common.mqtt_tls import tls_context
from hearth.common.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    REGISTRY_DEVICES_FILTER,
    SYS_ROOT,
    discovered_topic,
    ingest_barrier_topic,
    service_status_topic,
    topic_matches,
)
from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.config import IngestSettings

__all__ = ["ConsumerConfig", "TelemetryConsumer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerConfig:
    """How the consumer connects (built from :class:`IngestSettings`)."""

    host: str
    port: int
    client_id: str
    status_topic: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    receive_maximum: int = 10_000
    session_expiry: int = 7 * 24 * 3600
    keepalive: int = 30
    subscription: str = INGEST_SHARED_SUBSCRIPTION
    system_filters: tuple[str, ...] = ()
    barrier_topic: str | None = None
    """The replica's own barrier topic (needed with a device catalogue)."""
    ca_file: Path | None = None
    """MQTT over TLS trusting this CA (``mqtt_ca_file``); None: plain MQTT."""

    @classmethod
    def from_settings(
        cls, settings: IngestSettings, system_filters: tuple[str, ...] = ()
    ) -> ConsumerConfig:
        """Login ``svc-ingest-<replica>``, bound client id ``ingest-<replica>``, the windows."""
        return cls(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            client_id=settings.client_id,
            status_topic=service_status_topic(settings.service, settings.replica),
            barrier_topic=ingest_barrier_topic(settings.replica),
            username=settings.mqtt_username or None,
            password=settings.mqtt_password.get_secret_value() or None,
            receive_maximum=settings.receive_maximum,
            session_expiry=settings.session_expiry,
            keepalive=settings.mqtt_keepalive,
            system_filters=system_filters,
            ca_file=settings.mqtt_ca_file,
        )


class TelemetryConsumer:
    """The manual-ack MQTT 5 session of one ingest replica (see the module docstring)."""

    def __init__(
        self,
        config: ConsumerConfig,
        inbox: Inbox,
        on_system: Callable[[str, bytes], None] | None = None,
        catalogue: DeviceCatalogue | None = None,
    ) -> None:
        self.config = config
        self._inbox = inbox
        self._on_system = on_system
        if catalogue is not None and config.barrier_topic is None:
            raise ValueError("a consumer with a device catalogue needs a barrier topic")
        self._catalogue = catalogue
        self._generation = 0
        # Held while an ack checks its connection and queues its PUBACK, and while paho's
        # thread marks a connection as gone (see ``ack``).
        self._ack_lock = threading.Lock()
        self._subscribed = threading.Event()
        self.connects = 0
        """How many times a connection was accepted by the broker."""
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        context = tls_context(config.ca_file)
        if context is not None:
            client.tls_set_context(context)
        client.will_set(
            config.status_topic,
            service_status_payload(StatusReason.WILL),
            qos=1,
            retain=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # ------------------------------------------------------------------ state

    @property
    def subscribed(self) -> bool:
        """Whether the connection is up and the shared subscription granted (for /readyz)."""
        return self._subscribed.is_set()

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until subscribed; ``False`` after ``timeout`` seconds."""
        return self._subscribed.wait(timeout)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background (paho's thread retries until the broker answers)."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.session_expiry
        properties.ReceiveMaximum = self.config.receive_maximum
        self._client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Publish the retained ``disconnect`` status, disconnect, stop paho's thread.

        Blocking (up to ``timeout`` s): call it through ``asyncio.to_thread``. Deliveries
        not acknowledged by now are redelivered to this session when it comes back.
        """
        if self._subscribed.is_set():
            info = self._client.publish(
                self.config.status_topic,
                service_status_payload(StatusReason.DISCONNECT),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.warning("offline status not published: %s", exc)
        self._subscribed.clear()
        self._client.disconnect()
        self._client.loop_stop()

    # ------------------------------------------------------------------ acknowledging

    def ack(self, delivery: Delivery) -> bool:
        """Acknowledge a delivery whose row is committed; ``False`` if it cannot be.

        A message id means something only on the connection it came on: after a
        reconnect the broker redelivers whatever was unacknowledged, so an
        acknowledgement for an older connection is dropped (the redelivered copy is
        absorbed as a duplicate and acknowledged then). paho's ``ack`` only appends the
        PUBACK to its outgoing queue and is safe to call from the asyncio thread.

        The check and the append happen under ``_ack_lock``, which paho's thread also
        takes in ``_on_disconnect`` to end the generation: a PUBACK is therefore queued
        either before the connection is marked gone (then paho's ``reconnect`` discards
        it with the old socket's queue) or not at all. Without the lock an ack checked
        just before a drop could land on the next connection, where its packet id may
        already name another, uncommitted message.
        """
        if delivery.qos == 0:
            return True
        with self._ack_lock:
            if delivery.generation != self._generation:
                return False
            self._client.ack(delivery.mid, delivery.qos)
        return True

    # ------------------------------------------------------------ paho callbacks (paho's thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
        self.connects += 1
        log.info(
            "connected to %s:%d as %s (session present: %s)",
            self.config.host,
            self.config.port,
            self.config.client_id,
            getattr(flags, "session_present", None),
        )
        # Retain handling 2: the broker replays no retained telemetry on (re)subscribing.
        # Those values were stored when they were live; without it every reconnect would
        # pull (and ack and skip) the last value of every metric in every home.
        client.subscribe(
            [
                (
                    self.config.subscription,
                    SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND),
                ),
                *((name, SubscribeOptions(qos=0)) for name in self._system_filters()),
            ]
        )
        client.publish(
            self.config.status_topic,
            service_status_payload(StatusReason.CONNECTED),
            qos=1,
            retain=True,
        )

    def _system_filters(self) -> tuple[str, ...]:
        barrier = self.config.barrier_topic
        if self._catalogue is None or barrier is None:
            return self.config.system_filters
        return (*self.config.system_filters, REGISTRY_DEVICES_FILTER, barrier)

    def send_barrier(self) -> None:
        """Publish this connection's barrier token on the replica's own barrier topic."""
        if self._catalogue is not None and self.config.barrier_topic is not None:
            token = self._catalogue.expect_barrier()
            self._client.publish(self.config.barrier_topic, token.encode(), qos=0)

    def report_discovered(self, home: str, device: str, metric: str) -> None:
        """Report an undeclared metric to the registry (QoS 1; safe from any thread)."""
        self._client.publish(
            discovered_topic(home, device), DiscoveredMetric(metric=metric).to_bytes(), qos=1
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [code for code in reasons if code.is_failure]
        if refused:
            log.error("broker refused %s: %s", self.config.subscription, refused[0])
            return
        self._subscribed.set()
        self.send_barrier()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:  # no ack of this connection's messages may be sent from now on
            self._generation += 1
        self._subscribed.clear()
        if self._catalogue is not None:
            self._catalogue.connection_lost()
        log.warning("disconnected from the broker: %s", reason)

    def _catalogue_message(self, message: mqtt.MQTTMessage) -> bool:
        """Hand a snapshot or a barrier to the catalogue; whether it was one."""
        assert self._catalogue is not None
        if message.topic == self.config.barrier_topic:
            self._catalogue.barrier(bytes(message.payload))
        elif topic_matches(REGISTRY_DEVICES_FILTER, message.topic):
            self._catalogue.apply(message.topic, bytes(message.payload))
        else:
            return False
        return True

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith(SYS_ROOT + "/"):
            if message.qos > 0:  # granted QoS 0; acknowledged at once should one come as 1
                client.ack(message.mid, message.qos)
            if self._catalogue is not None and self._catalogue_message(message):
                return
            if self._on_system is not None:
                self._on_system(message.topic, bytes(message.payload))
            return
        self._inbox.put(
            Delivery(
                mid=message.mid,
                qos=message.qos,
                topic=message.topic,
                payload=bytes(message.payload),
                retain=bool(message.retain),
                received_at=datetime.now(UTC),
                received_mono=time.monotonic(),
                generation=self._generation,
            )
        )
