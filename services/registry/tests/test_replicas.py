"""Two registry replicas on one database and one broker: verdicts and presence once.

Both replicas hear every ack and status (docs/decisions.md, "Commands and presence"): a
verdict is recorded by a conditional update (the first wins), a presence change by a
conditional update too, so exactly one replica publishes each presence event; a call
waiting on either replica gets the verdict.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from hearth.common.messages import RegistryEvent
from hearth.common.topics import registry_home_topic
from hearth.common.web import service_state
from hearth.registry.main import create_app as create_registry_app
from hearth.registry.state import RegistryState
from hearth.testing.apps import serve_app
from hearth.testing.broker import MqttClientFactory, RunningBroker
from hearth.testing.database import PostgresServer
from hearth.testing.device import TestDevice
from hearth.testing.services import ServiceStack, running_stack
from hearth.testing.waiting import wait_until

WAIT = 10.0


@pytest.fixture(scope="module")
def replicas(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceStack, httpx.Client, RegistryState]]:
    with running_stack(
        postgres_server, broker, tmp_path_factory.mktemp("replicas"), sweep_interval=0.2
    ) as stack:
        first = service_state(stack.registry_app, RegistryState).settings
        replica = f"test-{secrets.token_hex(4)}"
        login = broker.service_login("registry", replica)
        second = first.model_copy(
            update={
                "replica": replica,
                "mqtt_username": login.username,
                "mqtt_password": SecretStr(login.password),
            }
        )
        app = create_registry_app(second)
        running = serve_app(app, wait_path="/readyz")
        try:
            with httpx.Client(base_url=running.url, timeout=WAIT + 30) as http:
                yield stack, http, service_state(app, RegistryState)
        finally:
            running.stop()


def test_each_verdict_and_presence_change_happens_once(
    replicas: tuple[ServiceStack, httpx.Client, RegistryState],
    broker: RunningBroker,
    mqtt_client: MqttClientFactory,
) -> None:
    stack, other, other_state = replicas
    states = (service_state(stack.registry_app, RegistryState), other_state)
    statuses = [state.watch.statuses for state in states]
    owner = stack.create_user("owner")
    home = str(stack.create_home(owner)["slug"])
    listener = mqtt_client(broker, "realtime")
    listener.subscribe_and_wait(registry_home_topic(home))
    device = TestDevice.provision(
        stack, broker, owner, home, properties=[{"name": "power", "kind": "boolean"}]
    )
    slug = device.device

    def presence_events() -> list[str | None]:
        found = []
        for payload in listener.payloads():
            event = RegistryEvent.from_bytes(payload)
            if event.presence is not None and event.device == slug:
                found.append(None if event.presence.reason is None else event.presence.reason.value)
        return found

    try:
        device.connect()
        wait_until(lambda: presence_events() == ["connected"])
        for client in (stack.http, other):  # a call waiting on either replica gets the verdict
            response = client.post(
                f"/registry/homes/{home}/devices/{slug}/commands",
                json={"property": "power", "value": True, "wait": WAIT},
                headers=owner.headers,
            )
            assert response.status_code == 201, response.text
            assert response.json()["outcome"] == "done"
        device.kill()
        wait_until(lambda: presence_events() == ["connected", "will"])
        # Both replicas handled the birth and the will; a marker event published after that
        # arrives after any duplicate would have: there is none.
        wait_until(
            lambda: all(s.watch.statuses >= n + 2 for s, n in zip(states, statuses, strict=True))
        )
        stack.create_device(owner, home, f"marker-{uuid.uuid4().hex[:6]}")
        listener.wait_for(
            lambda: any(
                RegistryEvent.from_bytes(p).kind.value == "device" for p in listener.payloads()
            ),
            timeout=WAIT,
        )
        assert presence_events() == ["connected", "will"]
        log = other.get(
            f"/registry/homes/{home}/devices/{slug}/commands", headers=owner.headers
        ).json()
        assert [record["outcome"] for record in log] == ["done", "done"]
        for state in states:  # each replica heard both acks; one recorded each verdict
            assert state.commands.acks + state.commands.stray_acks == 2
        assert sum(state.commands.acks for state in states) == 2
    finally:
        device.close()
