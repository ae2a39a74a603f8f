"""hearth.common.mqtt against a real Mosquitto: birth, will, reconnect, resubscribe, handlers.

The intake (:mod:`hearth.common.mqtt_intake`): a burst the broker has already sent (the
test holds the event loop until the publisher has every PUBACK, so the burst waits in the
connection's socket) reaches the handler in a few batches, every message once and in
order, and the router's ``caught_up`` runs after each batch. With aiomqtt's own intake (one
packet read per loop turn, one task per message) the same burst takes about one batch per
message, far more than the test allows.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI, Response
from pydantic import SecretStr

from hearth.common.messages import PresenceState, ServiceStatus, StatusReason
from hearth.common.mqtt import (
    MqttConfig,
    MqttConnection,
    MqttRefused,
    MqttUnavailable,
    backoff_delays,
)
from hearth.common.mqtt_intake import IntakeQueue, take_waiting
from hearth.common.routing import TopicRouter
from hearth.common.settings import HearthSettings
from hearth.testing.apps import RunningApp
from hearth.testing.broker import MqttTestClient, RunningBroker
from hearth.testing.ports import free_port

MqttClientFactory = Callable[..., MqttTestClient]


def replica_name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def config_for(broker: RunningBroker, service: str, **options: Any) -> MqttConfig:
    replica = options.pop("replica", replica_name())
    login = broker.service_login(service, replica)  # bound to <service>-<replica>
    defaults: dict[str, Any] = {
        "replica": replica,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "timeout": 5.0,
    }
    defaults.update(options)
    return MqttConfig(
        host=broker.host,
        port=broker.port,
        service=service,
        username=login.username,
        password=login.password,
        **defaults,
    )


class Inbox:
    """An ``on_message`` handler that keeps (topic, payload) pairs and lets a test wait."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.fail_on = fail_on
        self._changed = asyncio.Condition()

    async def __call__(self, message: aiomqtt.Message) -> None:
        async with self._changed:
            if message.payload == self.fail_on:
                raise RuntimeError("handler bug")
            payload = message.payload
            assert isinstance(payload, bytes)
            self.items.append((str(message.topic), payload))
            self._changed.notify_all()

    async def wait_for(self, payload: bytes, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: payload in self.payloads())

    def payloads(self) -> list[bytes]:
        return [p for _, p in self.items]


async def eventually(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (polling) until ``predicate()`` is true."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polling state owned by the code under test
            await asyncio.sleep(0.01)


def status_of(client: MqttTestClient, topic: str, index: int = -1) -> ServiceStatus:
    return ServiceStatus.from_bytes(client.payloads(topic)[index])


@asynccontextmanager
async def publisher(mqtt_client: MqttClientFactory, broker: RunningBroker) -> AsyncIterator[Any]:
    """An auth-service paho client; yields an async ``publish(topic, payload)``."""
    client = await asyncio.to_thread(mqtt_client, broker, "auth")

    async def publish(topic: str, payload: bytes) -> None:
        reason = await asyncio.to_thread(client.publish_and_wait, topic, payload, 1)
        assert reason is not None
        assert not reason.is_failure

    yield publish


# --------------------------------------------------------------------------- unit


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    delays = backoff_delays(0.1, 1.0, random.Random(7))
    drawn = [next(delays) for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, step in zip(drawn, steps, strict=True):
        assert step / 2 <= delay <= step
    assert len(set(drawn)) == len(drawn)  # jittered, not a fixed ladder


def test_config_defaults_and_checks() -> None:
    config = MqttConfig(host="h", port=1, service="ingest", replica="2", password="pw")
    assert config.client_id == "ingest-2"
    assert config.status_topic == "hearth-sys/services/ingest/2"
    assert "pw" not in repr(config)
    with pytest.raises(ValueError, match="reconnect_min"):
        MqttConfig(host="h", port=1, service="s", replica="r", reconnect_min=2, reconnect_max=1)


def test_config_from_a_services_settings() -> None:
    settings = HearthSettings(
        env="test",
        service="ingest",
        replica="r7",
        mqtt_host="broker.local",
        mqtt_port=1999,
        mqtt_password=SecretStr("from-secrets"),
    )
    config = MqttConfig.from_settings(settings, session_expiry=600, clean_start=False)
    assert (config.host, config.port, config.username, config.password) == (
        "broker.local",
        1999,
        "svc-ingest-r7",  # this replica's own login, bound to ingest-r7
        "from-secrets",
    )
    assert (config.client_id, config.session_expiry, config.clean_start) == (
        "ingest-r7",
        600,
        False,
    )


# --------------------------------------------------------------------------- real broker


async def test_birth_is_retained_online_and_a_clean_exit_says_offline(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    config = config_for(broker, "registry")
    async with MqttConnection(config) as connection:
        assert await connection.wait_connected(5)
        # a subscriber arriving later sees the birth: it is retained
        watcher = await asyncio.to_thread(mqtt_client, broker, "realtime")
        await asyncio.to_thread(watcher.subscribe_and_wait, config.status_topic)
        await asyncio.to_thread(watcher.wait_for_messages, 1, config.status_topic)
        birth_message = watcher.received(config.status_topic)[0]
        assert birth_message.retain
        birth = status_of(watcher, config.status_topic)
        assert (birth.state, birth.reason) == (PresenceState.ONLINE, StatusReason.CONNECTED)
        assert birth.ts is not None

    assert not connection.connected
    await asyncio.to_thread(watcher.wait_for_messages, 2, config.status_topic)
    goodbye = status_of(watcher, config.status_topic)
    assert (goodbye.state, goodbye.reason) == (PresenceState.OFFLINE, StatusReason.DISCONNECT)


async def test_it_reconnects_and_resubscribes_after_the_broker_restarts(
    fresh_broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    inbox = Inbox()
    topic = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000001"
    config = config_for(fresh_broker, "realtime")
    async with MqttConnection(
        config, subscriptions=[("hearth-sys/auth/#", 1)], on_message=inbox
    ) as connection:
        assert await connection.wait_connected(5)
        async with publisher(mqtt_client, fresh_broker) as publish:
            await publish(topic, b"before")
            await inbox.wait_for(b"before")

        await connection.readiness_check()  # /readyz: connected
        await asyncio.to_thread(fresh_broker.stop)
        await eventually(lambda: not connection.connected)
        with pytest.raises(ConnectionError, match="not connected to the broker"):
            await connection.readiness_check()
        await asyncio.to_thread(fresh_broker.start)
        await eventually(lambda: connection.connects == 2 and connection.connected)

        # a clean session: only a fresh SUBSCRIBE can bring this one in
        async with publisher(mqtt_client, fresh_broker) as publish:
            await publish(topic, b"after")
            await inbox.wait_for(b"after")
    assert inbox.payloads().count(b"after") == 1


async def test_a_handler_exception_does_not_end_the_loop(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    inbox = Inbox(fail_on=b"boom")
    topic = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000002"
    config = config_for(broker, "registry")
    async with MqttConnection(config, subscriptions=[(topic, 1)], on_message=inbox) as connection:
        assert await connection.wait_connected(5)
        async with publisher(mqtt_client, broker) as publish:
            await publish(topic, b"boom")
            await publish(topic, b"fine")
            await inbox.wait_for(b"fine")
        assert connection.handler_errors == 1
        assert connection.connects == 1
        assert connection.connected
    assert inbox.payloads() == [b"fine"]


async def test_a_router_given_subscribes_to_its_routes_and_gets_every_message(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    marks, rest = Inbox(), Inbox()
    routed = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000005"
    other = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000006"
    router = TopicRouter()
    connection = MqttConnection(config_for(broker, "realtime"), router=router)
    router.route(routed, marks)  # routes may be added until the connection starts
    router.otherwise(rest)
    async with connection:
        assert await connection.wait_connected(5)
        assert connection.subscriptions == {routed: 1}
        await connection.subscribe(other, 1)  # a run-time subscription: no route matches it
        async with publisher(mqtt_client, broker) as publish:
            await publish(routed, b"m1")
            await publish(other, b"o1")
            await marks.wait_for(b"m1")
            await rest.wait_for(b"o1")
    assert (marks.payloads(), rest.payloads()) == ([b"m1"], [b"o1"])
    with pytest.raises(ValueError, match="not both"):
        MqttConnection(config_for(broker, "realtime"), router=router, on_message=marks)


async def test_subscriptions_change_at_run_time(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    inbox = Inbox()
    kept = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000003"
    dropped = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000004"
    config = config_for(broker, "realtime")
    async with MqttConnection(config, subscriptions=[(kept, 1)], on_message=inbox) as connection:
        assert await connection.wait_connected(5)
        await connection.subscribe(dropped, 1)
        async with publisher(mqtt_client, broker) as publish:
            await publish(dropped, b"d1")
            await inbox.wait_for(b"d1")
            await connection.unsubscribe(dropped)
            await publish(dropped, b"d2")
            await publish(kept, b"k1")  # positive control, sent after d2
            await inbox.wait_for(b"k1")
        assert connection.subscriptions == {kept: 1}
    assert b"d2" not in inbox.payloads()


async def test_subscription_identifiers_tell_overlapping_subscriptions_apart(
    fresh_broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    seen: list[tuple[str, bytes, tuple[int, ...]]] = []

    async def record(message: aiomqtt.Message) -> None:
        ids = getattr(message.properties, "SubscriptionIdentifier", None) or []
        assert isinstance(message.payload, bytes)
        seen.append((str(message.topic), message.payload, tuple(ids)))

    narrow, wide = "hearth-sys/auth/users/+", "hearth-sys/auth/#"
    topic = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000005"
    config = config_for(fresh_broker, "realtime")
    async with MqttConnection(config, on_message=record) as connection:
        assert await connection.wait_connected(5)
        await connection.subscribe(narrow, 1, identifier=7)
        await connection.subscribe(wide, 1, identifier=9)
        assert connection.identifiers == {narrow: 7, wide: 9}
        async with publisher(mqtt_client, fresh_broker) as publish:
            await publish(topic, b"both")
            await eventually(lambda: len(seen) == 2)
            assert sorted(ids for _, _, ids in seen) == [(7,), (9,)]
            await connection.unsubscribe(wide)
            fresh_broker.restart()  # the identifier survives a reconnect
            assert await connection.wait_connected(10)
            await eventually(lambda: connection.connects == 2)
        async with publisher(mqtt_client, fresh_broker) as publish:
            await publish(topic, b"narrow")
            await eventually(lambda: any(p == b"narrow" for _, p, _ in seen))
        assert [ids for _, p, ids in seen if p == b"narrow"] == [(7,)]
        assert connection.identifiers == {narrow: 7}
        with pytest.raises(ValueError, match="out of range"):
            await connection.subscribe(wide, 1, identifier=0)


async def test_a_subscription_the_role_forbids_is_refused(broker: RunningBroker) -> None:
    config = config_for(broker, "ingest")
    async with MqttConnection(config) as connection:
        assert await connection.wait_connected(5)
        with pytest.raises(MqttRefused, match="hearth/#"):
            await connection.subscribe("hearth/#", 1)
        assert connection.subscriptions == {}
        assert connection.connected


async def test_publish_waits_for_the_connection(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    topic = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000005"
    watcher = await asyncio.to_thread(mqtt_client, broker, "realtime")
    await asyncio.to_thread(watcher.subscribe_and_wait, topic)
    async with MqttConnection(config_for(broker, "auth")) as connection:
        assert not connection.connected  # entering does not wait for the broker
        await connection.publish(topic, b"queued-until-connected", wait=5)
    messages = await asyncio.to_thread(watcher.wait_for_messages, 1, topic)
    assert [bytes(m.payload) for m in messages] == [b"queued-until-connected"]


async def test_without_a_broker_it_keeps_trying_and_publish_fails_fast() -> None:
    config = MqttConfig(
        host="127.0.0.1",
        port=free_port(),
        service="auth",
        replica=replica_name(),
        reconnect_min=0.01,
        reconnect_max=0.02,
    )
    async with MqttConnection(config) as connection:
        assert not await connection.wait_connected(0.3)
        with pytest.raises(MqttUnavailable) as caught:
            await connection.publish("hearth-sys/auth/x", b"x", wait=0)
        assert caught.value.status == 503
        assert connection.connects == 0
    with pytest.raises(MqttUnavailable, match="closed"):
        await connection.publish("hearth-sys/auth/x", b"x")  # no 5 s wait once closed


async def test_a_persistent_session_keeps_messages_while_away(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    inbox = Inbox()
    topic = "hearth-sys/auth/users/00000000-0000-4000-8000-000000000006"
    config = config_for(broker, "registry", clean_start=False, session_expiry=60)
    async with MqttConnection(config, subscriptions=[(topic, 1)], on_message=inbox) as first:
        assert await first.wait_connected(5)
    async with publisher(mqtt_client, broker) as publish:
        await publish(topic, b"while-away")
    async with MqttConnection(config, on_message=inbox) as second:  # no subscriptions of its own
        await inbox.wait_for(b"while-away")
        assert second.connected


async def test_inside_a_fastapi_lifespan_readyz_follows_the_connection(
    broker: RunningBroker, mqtt_client: MqttClientFactory, app_server: Callable[..., RunningApp]
) -> None:
    config = config_for(broker, "registry")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with MqttConnection(config) as mqtt:
            app.state.mqtt = mqtt
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, bool]:
        connected: bool = app.state.mqtt.connected
        response.status_code = 200 if connected else 503
        return {"mqtt": connected}

    running = await asyncio.to_thread(app_server, app, wait_path="/readyz")
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{running.url}/readyz")).json() == {"mqtt": True}
    watcher = await asyncio.to_thread(mqtt_client, broker, "realtime")
    await asyncio.to_thread(watcher.subscribe_and_wait, config.status_topic)
    await asyncio.to_thread(watcher.wait_for_messages, 1, config.status_topic)
    assert status_of(watcher, config.status_topic).state is PresenceState.ONLINE

    await asyncio.to_thread(running.stop)  # lifespan shutdown closes the connection

    await asyncio.to_thread(watcher.wait_for_messages, 2, config.status_topic)
    assert status_of(watcher, config.status_topic).reason is StatusReason.DISCONNECT


# --------------------------------------------------------------------------- the will

REPLICA_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from hearth.common.mqtt import MqttConfig, MqttConnection

    async def main() -> None:
        config = MqttConfig(
            host="127.0.0.1",
            port=int(os.environ["T_PORT"]),
            service="ingest",
            replica=os.environ["T_REPLICA"],
            username=os.environ["T_USERNAME"],
            password=os.environ["T_PASSWORD"],
        )
        async with MqttConnection(config) as connection:
            if not await connection.wait_connected(10):
                sys.exit(3)
            print("connected", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_the_will_fires_when_the_process_is_killed(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    replica = str(random.randrange(1000, 10**6))
    topic = f"hearth-sys/services/ingest/{replica}"
    env = {
        **os.environ,
        "T_PORT": str(broker.port),
        "T_REPLICA": replica,
        "T_USERNAME": broker.service_login("ingest", replica).username,
        "T_PASSWORD": broker.service_login("ingest", replica).password,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REPLICA_SCRIPT, env=env, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            assert await process.stdout.readline() == b"connected\n"
        watcher = await asyncio.to_thread(mqtt_client, broker, "realtime")
        await asyncio.to_thread(watcher.subscribe_and_wait, topic)
        await asyncio.to_thread(watcher.wait_for_messages, 1, topic)
        assert status_of(watcher, topic).state is PresenceState.ONLINE

        process.send_signal(signal.SIGKILL)
        assert await process.wait() == -signal.SIGKILL

        await asyncio.to_thread(watcher.wait_for_messages, 2, topic)
        will = status_of(watcher, topic)
        assert (will.state, will.reason) == (PresenceState.OFFLINE, StatusReason.WILL)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    # and it stays: a newcomer reads the retained will
    late = await asyncio.to_thread(mqtt_client, broker, "realtime")
    await asyncio.to_thread(late.subscribe_and_wait, topic)
    await asyncio.to_thread(late.wait_for_messages, 1, topic)
    retained = late.received(topic)[0]
    assert retained.retain
    assert ServiceStatus.from_bytes(retained.payload).reason is StatusReason.WILL


# --------------------------------------------------------------------------- intake
BURST = 200


async def test_a_burst_already_received_is_dispatched_in_a_few_batches_in_order(
    broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    received: list[bytes] = []
    batches: list[int] = []  # how many messages had arrived at each caught_up
    topic = f"hearth-sys/auth/users/{uuid.uuid4()}"  # its own: no retained mark of another test

    def record(message: aiomqtt.Message) -> None:
        assert isinstance(message.payload, bytes)
        received.append(message.payload)

    def caught_up() -> None:
        if not batches or batches[-1] != len(received):
            batches.append(len(received))

    router = TopicRouter()
    router.route(topic, record)
    router.when_caught_up(caught_up)
    publisher = await asyncio.to_thread(mqtt_client, broker, "auth", max_inflight=BURST)
    async with MqttConnection(config_for(broker, "realtime"), router=router) as connection:
        assert await connection.wait_connected(5)
        publisher.publish_and_wait(topic, b"first", 1)  # positive control: one alone
        await eventually(lambda: received == [b"first"])
        assert batches == [1]  # caught up right after it

        infos = [publisher.publish(topic, str(n).encode(), qos=1) for n in range(BURST)]
        for info in infos:  # the loop is held: the burst waits in the connection's socket
            info.wait_for_publish(10)
        await eventually(lambda: len(received) == BURST + 1)

    assert received == [b"first", *(str(n).encode() for n in range(BURST))]
    assert batches[-1] == BURST + 1
    assert len(batches) - 1 <= BURST // 10, batches  # a few batches, not one per message


async def test_the_intake_queue_is_the_one_aiomqtt_made_and_gives_what_waits() -> None:
    intake = IntakeQueue()
    assert take_waiting(intake.queue) is None  # nothing made yet
    queue = intake(maxsize=0)
    assert intake.queue is queue
    assert take_waiting(queue) is None
    message = aiomqtt.Message("t/1", b"x", 1, False, 1, None)
    queue.put_nowait(message)
    assert take_waiting(queue) is message
    assert take_waiting(queue) is None
