"""What the registry's broker role can reach, checked on the real Mosquitto 2.0.11.

The issue asks that the registry's login manage device logins only. dynsec authorises a
control command by its *topic* (``$CONTROL/dynamic-security/v1``, one topic for every
command) and never looks into the payload, so a role cannot be limited to some client
names. This test pins that residual risk (docs/broker.md, "The registry's broker role"):
if a later broker could express the limit, it fails and the docs must change. What holds
the registry to device names instead is :func:`hearth.common.dynsec.check_device_commands`
(services/common/tests/test_dynsec.py), shown here refusing the same command.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from hearth.common.dynsec import CONTROL_TOPIC, RESPONSE_TOPIC, DynsecRefused, check_device_commands
from hearth.testing.broker import MqttTestClient, RunningBroker


def test_the_registry_role_reaches_logins_outside_the_device_prefix(
    broker: RunningBroker, mqtt_client: Callable[..., MqttTestClient]
) -> None:
    registry = mqtt_client(broker, "registry")
    assert registry.subscribe_and_wait(RESPONSE_TOPIC)[0].value == 1
    name = f"svc-reach-{uuid.uuid4().hex[:8]}"  # not a device name
    marker = uuid.uuid4().hex
    command = {
        "command": "createClient",
        "username": name,
        "password": uuid.uuid4().hex,
        "correlationData": marker,
    }
    registry.publish_and_wait(CONTROL_TOPIC, json.dumps({"commands": [command]}))
    registry.wait_for(lambda: any(marker.encode() in p for p in registry.payloads()))
    (answer,) = [json.loads(p) for p in registry.payloads() if marker.encode() in p]
    assert "error" not in answer["responses"][0]  # the broker let it through
    try:
        with broker.control() as dynsec:
            assert dynsec.call("getClient", username=name)["client"]["username"] == name
    finally:
        with broker.control() as dynsec:
            dynsec.call("deleteClient", username=name)

    # What the registry's own code does instead: the guard refuses that very command.
    with pytest.raises(DynsecRefused, match="not a device login"):
        check_device_commands([command])
