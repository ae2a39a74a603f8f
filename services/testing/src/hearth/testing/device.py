"""TestDevice: a small device that speaks docs/topics.md ("What your firmware must do").

For tests of the command path, presence and the shadow against the real broker::

    device = TestDevice(broker.host, broker.port, login, "home-1", "lamp")
    device.connect()                      # persistent session, will, birth, command/+, state
    device.answer("power", lambda value: Reply.reject("busy"))
    ...
    device.sleep()                        # clean disconnect, session kept (commands queue)
    device.kill()                         # the connection dies without DISCONNECT (the will)

It logs in with the registry's credentials (the client id is the username), uses a
persistent MQTT 5 session (clean start off, ``session_expiry`` seconds), sets the will
``{"state":"offline","reason":"will"}`` retained, and after every connect publishes its
birth, subscribes to ``command/+`` and publishes its state. On a command it acks a
duplicate again with the same outcome, drops one whose ``expires_at`` passed (ack
``expired``), asks its per-property answer (default: carry it out), and when it carries a
command out publishes the new state (retained) *before* the ``done`` ack. ``acted`` lists
what it carried out, ``commands`` every command it received.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from hearth.common.messages import Ack, AckOutcome, Command, MessageError
from hearth.common.topics import (
    ack_topic,
    command_topic,
    parse_topic,
    state_topic,
    status_topic,
    telemetry_topic,
)
from hearth.testing.broker import Login, MqttTestClient, RunningBroker, Will, connect_client
from hearth.testing.services import ServiceStack, User

__all__ = ["Reply", "TestDevice"]

_REMEMBERED_IDS = 32
"""How many command ids the device remembers to recognise duplicates."""


@dataclass(frozen=True)
class Reply:
    """What the device does with a command: act, reject (with a reason), or stay silent."""

    outcome: AckOutcome | None
    reason: str | None = None

    @classmethod
    def act(cls) -> Reply:
        return cls(AckOutcome.DONE)

    @classmethod
    def reject(cls, reason: str) -> Reply:
        return cls(AckOutcome.REJECTED, reason)

    @classmethod
    def ignore(cls) -> Reply:
        """Never ack (the caller sees ``timeout``)."""
        return cls(None)


class TestDevice:
    """A device for tests (see the module docstring)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        host: str,
        port: int,
        login: Login,
        home: str,
        device: str,
        *,
        state: dict[str, Any] | None = None,
        session_expiry: int = 3600,
    ) -> None:
        self.host, self.port, self.login = host, port, login
        self.home, self.device = home, device
        self.state: dict[str, Any] = dict(state or {})
        self.session_expiry = session_expiry
        self.client: MqttTestClient | None = None
        self.commands: list[Command] = []
        """Every command received (duplicates and expired ones included)."""
        self.acted: list[tuple[str, Any]] = []
        """``(property, value)`` of every command carried out."""
        self._answers: dict[str, Callable[[Any], Reply]] = {}
        self._done: OrderedDict[str, Ack] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def provision(
        cls,
        stack: ServiceStack,
        broker: RunningBroker,
        owner: User,
        home: str,
        *,
        state: dict[str, Any] | None = None,
        **fields: Any,
    ) -> TestDevice:
        """``owner`` adds a device (a random slug) through the registry's API; it logs in
        with the credentials of the 201 answer (not connected yet)."""
        slug = f"dev-{uuid.uuid4().hex[:8]}"
        credentials = stack.create_device(owner, home, slug, **fields)["credentials"]
        login = Login(credentials["username"], credentials["password"], credentials["client_id"])
        return cls(broker.host, broker.port, login, home, slug, state=state)

    def close(self) -> None:
        """Disconnect if connected (test teardown)."""
        if self.client is not None:
            self.client.close()
            self.client = None

    # ------------------------------------------------------------------ behaviour

    def answer(self, prop: str, decide: Callable[[Any], Reply]) -> None:
        """How the device answers commands to ``prop`` (default: :meth:`Reply.act`)."""
        self._answers[prop] = decide

    # ------------------------------------------------------------------ connection

    def connect(self, *, birth: bool = True) -> None:
        """Connect (persistent session, will), publish the birth, subscribe, publish state."""
        will = Will(status_topic(self.home, self.device), b'{"state":"offline","reason":"will"}')
        client = connect_client(
            self.host,
            self.port,
            self.login,
            clean_start=False,
            session_expiry=self.session_expiry,
            will=will,
            on_message=self._on_message,
        )
        self.client = client
        if birth:
            self._status(b'{"state":"online","reason":"connected"}')
        commands = command_topic(self.home, self.device, "x").rpartition("/")[0] + "/+"
        granted = client.subscribe_and_wait(commands)
        if any(code.is_failure for code in granted):
            raise RuntimeError(f"command subscription refused: {granted}")
        for prop, value in self.state.items():
            self._publish_state(prop, value)

    def sleep(self, *, goodbye: bool = True) -> None:
        """A clean disconnect that keeps the session (commands queue at the broker)."""
        client = self._client()
        if goodbye:
            self._status(b'{"state":"offline","reason":"disconnect"}')
        client.close()
        self.client = None

    def kill(self) -> None:
        """Lose the connection without a DISCONNECT: the broker publishes the will."""
        client = self._client()
        client.loop_stop()
        # Close the socket without a DISCONNECT, and paho's wake-up socket pair with it
        # (paho 2 has no public call for this; left open they leak until collected).
        client._reset_sockets()
        self.client = None

    def publish_telemetry(self, metric: str, value: float) -> None:
        """Publish one reading (QoS 1, retained)."""
        self._client().publish_and_wait(
            telemetry_topic(self.home, self.device, metric), str(value), 1, True
        )

    # ------------------------------------------------------------------ internals

    def _client(self) -> MqttTestClient:
        if self.client is None:
            raise RuntimeError("the device is not connected")
        return self.client

    def _status(self, payload: bytes) -> None:
        self._client().publish_and_wait(status_topic(self.home, self.device), payload, 1, True)

    def _publish_state(self, prop: str, value: Any) -> None:
        self._client().publish(
            state_topic(self.home, self.device, prop), json.dumps(value), 1, True
        )

    def _ack(self, client: mqtt.Client, ack: Ack) -> None:
        client.publish(ack_topic(self.home, self.device), ack.to_bytes(), 1, False)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Paho's network thread: one command (see the module docstring)."""
        try:
            prop = parse_topic(message.topic).name or ""
            command = Command.from_bytes(message.payload)
        except (MessageError, ValueError):
            return
        with self._lock:
            self.commands.append(command)
            key = str(command.id)
            if key in self._done:
                self._ack(client, self._done[key])
                return
            ack = self._decide(client, prop, command)
            if ack is None:
                return
            self._done[key] = ack
            while len(self._done) > _REMEMBERED_IDS:
                self._done.popitem(last=False)
        self._ack(client, ack)

    def _decide(self, client: mqtt.Client, prop: str, command: Command) -> Ack | None:
        if command.is_expired():
            return Ack(id=command.id, outcome=AckOutcome.EXPIRED)
        reply = self._answers.get(prop, lambda _value: Reply.act())(command.value)
        if reply.outcome is None:
            return None
        if reply.outcome is AckOutcome.DONE:
            self.state[prop] = command.value
            self.acted.append((prop, command.value))
            # State first, then the ack.
            client.publish(
                state_topic(self.home, self.device, prop), json.dumps(command.value), 1, True
            )
            return Ack(id=command.id, outcome=AckOutcome.DONE, value=command.value)
        return Ack(id=command.id, outcome=reply.outcome, reason=reply.reason)
