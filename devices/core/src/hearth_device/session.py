"""The device's MQTT session (docs/topics.md, "What your firmware must do", steps 1-4).

paho-mqtt, MQTT 5: the client id is the username, *clean start* off with a one-day session
expiry (commands sent while the device is away are queued for it, unless they expire), the
retained will ``{"state":"offline","reason":"will"}`` set at connect. Its own network
thread reconnects with exponential back-off and full jitter
(:class:`hearth_device.protocol.backoff.Backoff`) instead of paho's fixed schedule, so the
devices of a home do not all reconnect in step after a broker restart. ``on_connect`` runs
after every accepted connect (birth, subscribe, states, replay are the caller's).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hearth_device.config import DeviceConfig
from hearth_device.protocol import messages
from hearth_device.protocol.backoff import Backoff

__all__ = ["SESSION_EXPIRY_S", "Session"]

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 86_400
"""How long the broker keeps the session (and queued commands) of a device that is away."""
KEEPALIVE_S = 30
NO_MATCHING_SUBSCRIBERS = 0x10
UNHEARD_MAX = 1000
"""The MQTT 5 PUBACK reason of a message the broker took and dropped: nobody subscribed."""


class Session:
    """One persistent MQTT session of the device, reconnecting until :meth:`stop`."""

    def __init__(
        self,
        config: DeviceConfig,
        on_connect: Callable[[], None],
        on_message: Callable[[str, bytes], None],
        *,
        backoff: Backoff | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.config = config
        self._on_connect = on_connect
        self._on_message = on_message
        self.backoff = backoff or Backoff(random.random, base=1.0, maximum=60.0)
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(config.username, config.password)
        if config.broker_tls:  # a CA file, the download's CA, or the system's CAs
            if ca_file is None and config.broker_ca is not None:
                client.tls_set_context(ssl.create_default_context(cadata=config.broker_ca))
            else:
                client.tls_set(ca_certs=ca_file)
        client.will_set(config.topics.status, messages.will(), qos=1, retain=True)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_publish = self._published
        self._unheard: set[int] = set()  # mids the broker acked with "no matching subscribers"
        self._unheard_lock = threading.Lock()
        self.client = client

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread (it connects and keeps reconnecting)."""
        self._thread = threading.Thread(target=self._run, name="hearth-session", daemon=True)
        self._thread.start()

    def stop(self, goodbye: bytes | None = None, timeout: float = 5.0) -> None:
        """Publish ``goodbye`` (retained status) if connected, disconnect, end the thread."""
        if goodbye is not None and self.connected.is_set():
            info = self.client.publish(self.config.topics.status, goodbye, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.info("goodbye not delivered (connection lost)")
        self._stopping.set()
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        host, port = self.config.broker_host, self.config.broker_port
        while not self._stopping.is_set():
            try:
                self.client.connect(
                    host, port, KEEPALIVE_S, clean_start=False, properties=properties
                )
            except OSError as exc:
                self._wait(f"cannot reach the broker at {host}:{port} ({exc})")
                continue
            while not self._stopping.is_set():
                if self.client.loop(timeout=0.5) != mqtt.MQTT_ERR_SUCCESS:
                    break
            self.connected.clear()
            if not self._stopping.is_set():
                self._wait("connection lost")

    def _wait(self, why: str) -> None:
        delay = self.backoff.next()
        log.warning("%s: next attempt in %.1f s", why, delay)
        self._stopping.wait(delay)

    # -- paho callbacks (the network thread) -----------------------------------------------

    def _connected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("the broker refused the login %s: %s", self.config.username, reason)
            return
        self.backoff.reset()
        self.connected.set()
        log.info("connected to %s:%s", self.config.broker_host, self.config.broker_port)
        client.subscribe(self.config.topics.command_filter, qos=1)
        self._on_connect()

    def _disconnected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected: %s", reason)

    def _message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._on_message(message.topic, bytes(message.payload))
        except Exception:  # one bad message never ends the session
            log.exception("handling a message on %s failed", message.topic)

    def _published(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        if getattr(reason, "value", 0) == NO_MATCHING_SUBSCRIBERS:
            with self._unheard_lock:
                if len(self._unheard) >= UNHEARD_MAX:  # live publishes nobody asks about
                    self._unheard.clear()
                self._unheard.add(mid)

    # -- publishing ------------------------------------------------------------------------

    def unheard(self, mid: int) -> bool:
        """Whether the broker acknowledged ``mid`` with "no matching subscribers" (0x10): it
        took the message and dropped it, nobody (not even ingest) was subscribed. Asks once."""
        with self._unheard_lock:
            if mid in self._unheard:
                self._unheard.discard(mid)
                return True
            return False

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> mqtt.MQTTMessageInfo:
        """QoS 1; the returned info's ``rc`` says whether it was handed to the connection."""
        return self.client.publish(topic, payload, qos=1, retain=retain)
