"""DynsecClient: the registry's requests to Mosquitto's dynamic security API, over its own login.

Commands go to ``$CONTROL/dynamic-security/v1`` on the registry's broker connection (its
role may publish there and read the response topic). Every command carries its own
``correlationData``; Mosquitto 2.0.11 echoes it in the JSON response, which reaches every
client subscribed to the response topic (other registry replicas, a bootstrap), so each
request picks out its own answers and ignores the rest.

Every command list passes :func:`hearth.common.dynsec.check_device_commands` first: the
registry's login could change any login at the broker, its code touches device logins only
(docs/broker.md, "The registry's broker role").
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiomqtt

from hearth.common.dynsec import CONTROL_TOPIC, RESPONSE_TOPIC, check_device_commands
from hearth.common.mqtt import MqttConnection, MqttUnavailable
from hearth.common.routing import payload_bytes
from hearth.registry.errors import BrokerUnavailable, DynsecFailed

__all__ = ["RESPONSE_TOPIC", "DynsecClient"]

_BATCH = 100
"""Commands per control message (a reconcile of thousands of devices sends several)."""


class DynsecClient:
    """Sends device-login commands and waits for their answers (``timeout`` seconds)."""

    def __init__(self, mqtt: MqttConnection, *, timeout: float = 5.0) -> None:
        self._mqtt = mqtt
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def handle_response(self, message: aiomqtt.Message) -> None:
        """Resolve the requests answered by a response message (route ``RESPONSE_TOPIC`` here)."""
        try:
            body = json.loads(payload_bytes(message))
        except ValueError:
            return
        responses = body.get("responses") if isinstance(body, dict) else None
        for response in responses if isinstance(responses, list) else []:
            if not isinstance(response, dict):
                continue
            future = self._pending.get(str(response.get("correlationData")))
            if future is not None and not future.done():
                future.set_result(response)

    async def execute(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each command's response (``{"command", "data"?, "error"?}``), in order.

        Raises :class:`BrokerUnavailable` when the broker does not answer in time.
        """
        checked = check_device_commands(commands)
        answers: list[dict[str, Any]] = []
        for start in range(0, len(checked), _BATCH):
            answers += await self._execute_batch(checked[start : start + _BATCH])
        return answers

    async def run(
        self, commands: Sequence[Mapping[str, Any]], *, tolerate: frozenset[str] = frozenset()
    ) -> list[dict[str, Any]]:
        """Like :meth:`execute`, but :class:`DynsecFailed` at the first error not tolerated.

        ``tolerate`` holds error texts that are fine here (``"Client not found"`` when
        deleting what may be gone already).
        """
        responses = await self.execute(commands)
        for response in responses:
            error = response.get("error")
            if error is not None and str(error) not in tolerate:
                raise DynsecFailed(f"the broker refused {response.get('command')}: {error}")
        return [_data(response) for response in responses]

    async def _execute_batch(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        ids = [uuid.uuid4().hex for _ in commands]
        futures = [loop.create_future() for _ in commands]
        self._pending.update(zip(ids, futures, strict=True))
        payload = json.dumps(
            {"commands": [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]}
        )
        try:
            async with asyncio.timeout(self._timeout):
                await self._mqtt.publish(CONTROL_TOPIC, payload, qos=1, wait=self._timeout)
                return list(await asyncio.gather(*futures))
        except (TimeoutError, MqttUnavailable):
            raise BrokerUnavailable(
                f"the broker did not answer {len(commands)} login command(s) "
                f"within {self._timeout:g} s"
            ) from None
        finally:
            for cid in ids:
                self._pending.pop(cid, None)


def _data(response: Mapping[str, Any]) -> dict[str, Any]:
    data = response.get("data")
    return data if isinstance(data, dict) else {}
