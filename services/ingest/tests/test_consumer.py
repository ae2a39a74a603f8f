"""The manual-ack consumer against a real Mosquitto: no PUBACK outlives its connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from hearth.common.topics import service_status_topic
from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.consumer import ConsumerConfig, TelemetryConsumer
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def next_delivery(inbox: Inbox) -> Delivery:
    async with asyncio.timeout(10):
        batch = await inbox.next_batch(max_rows=1, max_delay=0.01)
    assert len(batch) == 1
    return batch[0]


async def test_a_delivery_whose_connection_ended_is_not_acknowledged_but_redelivered(
    fresh_broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    broker = fresh_broker
    login = broker.service_login("ingest", "consumer-test")
    assert login.client_id is not None
    config = ConsumerConfig(
        host=broker.host,
        port=broker.port,
        client_id=login.client_id,
        status_topic=service_status_topic("ingest", "consumer-test"),
        username=login.username,
        password=login.password,
    )
    inbox = Inbox(asyncio.get_running_loop())
    consumer = TelemetryConsumer(config, inbox)
    consumer.start()
    try:
        assert await asyncio.to_thread(consumer.wait_subscribed, 10)
        device = mqtt_client(broker, device_login("h1", "d1", broker=broker))
        reason = await asyncio.to_thread(
            device.publish_and_wait, "hearth/h1/d1/telemetry/t", b"21.5", 1
        )
        assert reason is not None
        assert not reason.is_failure
        first = await next_delivery(inbox)
        assert (first.topic, first.payload, first.qos, first.retain) == (
            "hearth/h1/d1/telemetry/t",
            b"21.5",
            1,
            False,
        )

        # The connection ends (graceful broker restart: the session is persisted) before
        # the message's batch is committed: its acknowledgement must not be sent any more,
        # not even while paho has not reconnected yet.
        await asyncio.to_thread(broker.stop)
        await wait_until(lambda: not consumer.subscribed, 10, "the consumer to see the drop")
        assert consumer.ack(first) is False
        await asyncio.to_thread(broker.start)

        # The broker redelivers it to the resumed session, on the new connection.
        again = await next_delivery(inbox)
        assert (again.topic, again.payload) == (first.topic, first.payload)
        assert again.generation != first.generation
        assert consumer.ack(again) is True
    finally:
        await asyncio.to_thread(consumer.stop)

    # Acknowledged now: the same session resumed gets nothing more.
    inbox = Inbox(asyncio.get_running_loop())
    consumer = TelemetryConsumer(config, inbox)
    consumer.start()
    try:
        assert await asyncio.to_thread(consumer.wait_subscribed, 10)
        await asyncio.to_thread(device.publish_and_wait, "hearth/h1/d1/telemetry/t", b"22", 1)
        latest = await next_delivery(inbox)
        assert latest.payload == b"22"  # not the old 21.5 again
    finally:
        await asyncio.to_thread(consumer.stop)
