"""A blocking client of Mosquitto's dynamic security API (``$CONTROL/dynamic-security/v1``).

It logs in (normally as ``hearth-admin``), subscribes to the response topic and sends
commands in batches, each command tagged with its own ``correlationData``: responses go to
every client subscribed to the response topic, so several admins (registry replicas, a
bootstrap, tests) can work at once and each picks out its own answers. Mosquitto 2.0.11
echoes the ``correlationData`` member of each command in the JSON, not the MQTT 5 property.

Used by the bootstrap and the test harness (paho's network thread; callers block).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hearth.common.dynsec import CONTROL_TOPIC, RESPONSE_TOPIC
from hearth.common.mqtt_tls import tls_context
from hearth.platform.errors import BrokerUnavailable, DynsecError

__all__ = ["DynsecControl"]


class _Connection:
    """A paho MQTT 5 client that connects, waits for CONNACK and reports refusals."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        timeout: float,
        ca_file: Path | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        context = tls_context(ca_file)
        if context is not None:
            self.client.tls_set_context(context)
        self._connected = threading.Event()
        self.refused: ReasonCode | None = None
        """The CONNACK reason when the broker refused the login."""
        self.client.on_connect = self._on_connect
        self._host, self._port, self._username, self._timeout = host, port, username, timeout

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self.refused = reason
            client.disconnect()  # no automatic reconnect attempts after a refusal
        self._connected.set()

    def open(self) -> None:
        try:
            self.client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise BrokerUnavailable(
                f"cannot reach the broker at {self._host}:{self._port}: {exc.strerror or exc}"
            ) from None
        self.client.loop_start()
        if not self._connected.wait(self._timeout):
            self.close()
            raise BrokerUnavailable(f"no CONNACK from {self._host}:{self._port}")
        if self.refused is not None:
            reason = self.refused
            self.close()
            raise BrokerUnavailable(
                f"the broker at {self._host}:{self._port} refused the login "
                f"{self._username!r}: {reason}"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class DynsecControl:
    """A connected dynsec admin session: ``with DynsecControl(...) as dynsec: dynsec.call(...)``.

    :meth:`execute` sends commands in one message and returns their responses in order;
    :meth:`call` sends one command and returns its ``data`` or raises :class:`DynsecError`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        *,
        client_id: str | None = None,
        timeout: float = 5.0,
        ca_file: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self._conn = _Connection(
            host,
            port,
            username,
            password,
            client_id or f"{username}-{uuid.uuid4().hex[:12]}",
            timeout,
            ca_file,
        )
        self._responses: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._conn.client.on_message = self._on_message
        self._conn.client.on_subscribe = self._on_subscribe

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> Self:
        """Log in and subscribe to the response topic; raises :class:`BrokerUnavailable`."""
        self._conn.open()
        self._conn.client.subscribe(RESPONSE_TOPIC, qos=1)
        if not self._subscribed.wait(self.timeout):
            self.close()
            raise BrokerUnavailable(f"no SUBACK for {RESPONSE_TOPIC}")
        return self

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self if self._subscribed.is_set() else self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        responses = body.get("responses", []) if isinstance(body, dict) else []
        with self._arrived:
            for response in responses:
                if isinstance(response, dict) and isinstance(response.get("correlationData"), str):
                    self._responses[response["correlationData"]] = response
            self._arrived.notify_all()

    # -- commands --------------------------------------------------------------------------

    def execute(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; return each one's response (in order).

        A response is ``{"command": ..., "data"?: ..., "error"?: ...}``; errors are returned,
        not raised, so a caller can tolerate e.g. "Client not found".
        """
        if not commands:
            return []
        tagged = []
        ids = []
        for command in commands:
            cid = uuid.uuid4().hex
            ids.append(cid)
            tagged.append({**command, "correlationData": cid})
        payload = json.dumps({"commands": tagged})
        info = self._conn.client.publish(CONTROL_TOPIC, payload, qos=1)
        deadline = time.monotonic() + self.timeout
        with self._arrived:
            done = self._arrived.wait_for(
                lambda: all(cid in self._responses for cid in ids),
                max(0.0, deadline - time.monotonic()),
            )
            if not done:
                names = ", ".join(str(c.get("command")) for c in commands)
                raise BrokerUnavailable(
                    f"no dynsec response within {self.timeout:g} s to: {names} "
                    f"(publish rc {info.rc})"
                )
            return [self._responses.pop(cid) for cid in ids]

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """Run one command; return its ``data`` (``{}`` when none) or raise :class:`DynsecError`."""
        (response,) = self.execute([{"command": command, **params}])
        return _data_of(response)

    def run(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Like :meth:`execute`, but raise :class:`DynsecError` at the first error."""
        return [_data_of(response) for response in self.execute(commands)]


def _data_of(response: Mapping[str, Any]) -> dict[str, Any]:
    if "error" in response:
        raise DynsecError(str(response.get("command")), str(response["error"]))
    data = response.get("data")
    return data if isinstance(data, dict) else {}
