"""A device on the platform: session, telemetry, outbox, state and commands together.

- :meth:`Device.report` sends a reading as ``{"value", "ts", "id"}`` (QoS 1, retained), with
  ``ts`` only when the clock is synchronised and a ``<boot>-<seq>`` id always, so ingest
  stores a replayed reading once. While the broker is unreachable, or while older readings
  wait, it goes to the on-disk :class:`~hearth_device.outbox.Outbox` instead; the sender
  thread replays the outbox in order after every connect and removes entries only once the
  broker acknowledged them.
- After every connect: the retained birth, the subscription (the session's), every
  property's retained state, then the replay.
- Commands go through :class:`~hearth_device.protocol.commands.CommandHandler`; after
  ``done`` the new state is published (retained) *before* the ack.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from hearth_device.config import DeviceConfig
from hearth_device.outbox import Outbox
from hearth_device.protocol import messages
from hearth_device.protocol.commands import CommandHandler
from hearth_device.session import Session

__all__ = ["Clock", "Device"]

log = logging.getLogger(__name__)

REPLAY_BATCH = 20
"""Outbox entries in flight at once during a replay (below Mosquitto's in-flight window)."""
PUBACK_WAIT_S = 10.0
RETRY_S = 1.0


class Clock:
    """Wall-clock time in epoch ms, and whether it can be trusted (NTP synchronised)."""

    def __init__(self, synced: Callable[[], bool] = lambda: True) -> None:
        self._synced = synced

    def now_ms(self) -> int:
        """The current time, epoch milliseconds."""
        return time.time_ns() // 1_000_000

    def synced_ms(self) -> int | None:
        """The current time if the clock is synchronised, else ``None``."""
        return self.now_ms() if self._synced() else None


class Device:
    """One device's side of docs/topics.md on top of a :class:`Session`."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        act: Callable[[str, object], object],
        states: Callable[[], dict[str, object]],
        outbox: Outbox,
        clock: Clock | None = None,
        boot: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.outbox = outbox
        self.clock = clock or Clock()
        self.ids = messages.MessageIds(boot or messages.boot_id(os.urandom(6)))
        self._states = states
        self.commands = CommandHandler(config.properties, act)
        self.session = Session(config, self._on_connect, self._on_message, ca_file=ca_file)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._sender = threading.Thread(target=self._send_outbox, name="hearth-outbox", daemon=True)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and start replaying the outbox when connected."""
        log.info("device %s/%s, boot id %s", self.topics.home, self.topics.device, self.ids.boot)
        self._sender.start()
        self.session.start()

    def stop(self) -> None:
        """Say goodbye (retained ``offline``/``disconnect``) and disconnect."""
        self._stopping.set()
        self._wake.set()
        self.session.stop(messages.goodbye(self.clock.synced_ms()))
        self._sender.join(5.0)

    @property
    def connected(self) -> bool:
        """Whether the session is connected now."""
        return self.session.connected.is_set()

    # -- telemetry -------------------------------------------------------------------------

    def report(self, metric: str, value: bool | float) -> str:
        """Send one reading now, or keep it in the outbox; returns its message id."""
        topic = self.topics.telemetry(metric)
        with self._lock:  # the measuring loop and sensor callbacks (PIR) report at once
            msg_id = self.ids.next()
            payload = messages.telemetry(value, msg_id, self.clock.synced_ms())
            if self.connected and len(self.outbox) == 0:
                info = self.session.publish(topic, payload, retain=True)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    return msg_id
            self.outbox.append(topic, payload)
        self._wake.set()
        return msg_id

    def _send_outbox(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            while self.connected and not self._stopping.is_set():
                entries = self.outbox.first(REPLAY_BATCH)
                if not entries:
                    break
                if not self._publish_all(entries):
                    self._stopping.wait(RETRY_S)  # the next attempt sends them again
                    break
                self.outbox.remove_first(len(entries))
                log.info("replayed %d readings from the outbox", len(entries))

    def _publish_all(self, entries: list[tuple[str, bytes]]) -> bool:
        """Publish a batch; whether the broker acknowledged all of it within one bound."""
        infos = [self.session.publish(topic, payload, retain=True) for topic, payload in entries]
        deadline = time.monotonic() + PUBACK_WAIT_S
        try:
            for info in infos:
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected:
                    return False
                info.wait_for_publish(left)
        except (RuntimeError, ValueError):  # not queued: the connection is gone
            return False
        if not all(info.is_published() for info in infos):
            return False
        unheard = [info.mid for info in infos if self.session.unheard(info.mid)]
        if unheard:  # after a broker restart ingest may subscribe again after us: keep them
            log.warning("%d replayed readings had no subscriber (ingest away?)", len(unheard))
            return False
        return True

    # -- state and commands ----------------------------------------------------------------

    def publish_state(self, prop: str, value: object) -> None:
        """The retained state of ``prop`` (after a change; dropped when offline: every connect
        publishes all states again)."""
        payload = messages.state(value, self.clock.synced_ms())
        if self.connected:
            self.session.publish(self.topics.state(prop), payload, retain=True)

    def _on_connect(self) -> None:
        self.session.publish(
            self.topics.status, messages.birth(self.clock.synced_ms()), retain=True
        )
        for prop, value in self._states().items():
            self.publish_state(prop, value)
        self._wake.set()

    def _on_message(self, topic: str, payload: bytes) -> None:
        prop = self.topics.command_property(topic)
        if prop is None:
            log.warning("ignored a message on %s", topic)
            return
        outcome = self.commands.handle(prop, payload, self.clock.synced_ms())
        if outcome.ack is None:
            log.warning("command on %s dropped: %s", topic, outcome.reason)
            return
        if outcome.changed:
            self.publish_state(prop, outcome.value)  # the state first, then the ack
            log.info("command %s=%r: %s", prop, outcome.value, outcome.outcome)
        else:
            log.info("command %s: %s (%s)", prop, outcome.outcome, outcome.reason)
        self.session.publish(self.topics.ack, outcome.ack, retain=False)
