"""DeviceWatch: the registry's ears on every device's topics (its broker connection).

The registry subscribes (not shared: every replica hears everything, so each has the whole
shadow) to:

- ``hearth/+/+/state/+``: the reported state, retained deliveries included (the shadow);
- ``hearth/+/+/status``: presence, retained included (:class:`PresenceService`);
- ``hearth/+/+/ack``: command verdicts (:class:`CommandService`);
- ``hearth/+/+/telemetry/+`` at QoS 0: only *when* a device was last heard (for
  ``silent``); values are ingest's business.

Every live (not retained) message of a device's own counts as hearing it, except a status
the device did not write (the broker's will, the registry's ``silent``). A payload that is
not what its topic carries is counted in ``rejected`` and otherwise ignored.
"""

from __future__ import annotations

import logging

import aiomqtt

from hearth.common.clock import utc_now
from hearth.common.messages import Ack, MessageError, StatusReason, parse_state, parse_status
from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.topics import DeviceTopic, Kind, TopicError, device_filter, parse_topic
from hearth.registry.commands import CommandService
from hearth.registry.presence import PresenceService
from hearth.registry.shadow import LiveShadow

__all__ = ["DeviceWatch"]

log = logging.getLogger(__name__)

_DEVICE_SAID = frozenset({StatusReason.CONNECTED, StatusReason.DISCONNECT, None})


class DeviceWatch:
    """Routes devices' messages to the shadow, presence and commands."""

    def __init__(
        self, shadow: LiveShadow, presence: PresenceService, commands: CommandService
    ) -> None:
        self._shadow = shadow
        self._presence = presence
        self._commands = commands
        self.rejected = 0
        """Messages whose topic or payload did not parse."""
        self.statuses = 0
        """Statuses handled (presence recorded, or found unchanged)."""

    def route(self, router: TopicRouter) -> None:
        """Have ``router`` subscribe to devices' topics and send their messages here."""
        router.route(device_filter(Kind.STATE), self.on_state)
        router.route(device_filter(Kind.STATUS), self.on_status)
        router.route(device_filter(Kind.ACK), self.on_ack)
        router.route(device_filter(Kind.TELEMETRY), self.on_telemetry, qos=0)

    def _topic(self, message: aiomqtt.Message) -> DeviceTopic | None:
        try:
            return parse_topic(str(message.topic))
        except TopicError:
            self.rejected += 1
            return None

    def _reject(self, topic: DeviceTopic, exc: Exception) -> None:
        self.rejected += 1
        log.debug("ignoring a malformed %s of %s/%s: %s", topic.kind, topic.home, topic.device, exc)

    def on_telemetry(self, message: aiomqtt.Message) -> None:
        """A reading: the device was heard (values are not kept here)."""
        topic = self._topic(message)
        if topic is not None and not message.retain:
            self._shadow.heard(topic.home, topic.device, utc_now())

    def on_state(self, message: aiomqtt.Message) -> None:
        """A reported state: into the shadow (retained too)."""
        topic = self._topic(message)
        payload = payload_bytes(message)
        if topic is None or topic.name is None or not payload:
            return
        try:
            state = parse_state(payload)
        except MessageError as exc:
            self._reject(topic, exc)
            return
        now = utc_now()
        self._shadow.report(
            topic.home, topic.device, topic.name, state.value, state.ts or now, len(payload)
        )
        if not message.retain:
            self._shadow.heard(topic.home, topic.device, now)

    async def on_status(self, message: aiomqtt.Message) -> None:
        """A status: the device's presence (its birth and goodbye also mean it was heard)."""
        topic = self._topic(message)
        payload = payload_bytes(message)
        if topic is None or not payload:
            return
        try:
            status = parse_status(payload)
        except MessageError as exc:
            self._reject(topic, exc)
            return
        if not message.retain and status.reason in _DEVICE_SAID:
            self._shadow.heard(topic.home, topic.device, utc_now())
        await self._presence.on_status(topic.home, topic.device, status)
        self.statuses += 1

    async def on_ack(self, message: aiomqtt.Message) -> None:
        """An ack: the command's verdict."""
        topic = self._topic(message)
        if topic is None:
            return
        try:
            ack = Ack.from_bytes(payload_bytes(message))
        except MessageError as exc:
            self._reject(topic, exc)
            return
        if not message.retain:
            self._shadow.heard(topic.home, topic.device, utc_now())
        await self._commands.on_ack(topic.home, topic.device, ack)
