"""The broker's flow-control settings do what docs/broker.md says (real Mosquitto)."""

from __future__ import annotations

import uuid

import pytest

from hearth.common.topics import INGEST_SHARED_SUBSCRIPTION, command_topic, telemetry_topic
from hearth.testing.broker import RunningBroker


def test_mqtt5_receive_maximum_governs_the_consumer_window(
    broker: RunningBroker, mqtt_client
) -> None:
    """An MQTT 5 consumer gets its Receive Maximum in flight (beyond max_inflight_messages);
    an MQTT 3.1.1 consumer gets max_inflight_messages (100)."""
    home, total = f"t{uuid.uuid4().hex[:10]}", 700
    topic_filter = f"hearth/{home}/+/command/#"
    v5 = mqtt_client(broker, "realtime", receive_maximum=500, manual_ack=True)
    v311 = mqtt_client(broker, "realtime", protocol=4, manual_ack=True)
    watcher = mqtt_client(broker, "realtime")  # acks at once: the positive control
    for client in (v5, v311, watcher):
        client.subscribe_and_wait(topic_filter)
    registry = mqtt_client(broker, "registry", max_inflight=100)
    for i in range(total):
        registry.publish(command_topic(home, "d1", "x"), str(i), qos=1)
    watcher.wait_for_messages(total, timeout=20)
    v5.wait_for_messages(500)
    v311.wait_for_messages(100)
    # Everything was routed (the watcher has it all), yet the windows held:
    assert len(v5.received()) == 500
    assert len(v311.received()) == 100
    for client in (v5, v311):
        for message in client.received():
            client.ack(message.mid, message.qos)
    v5.wait_for_messages(total, timeout=20)
    v311.wait_for(lambda: len(v311.received()) > 100)


@pytest.mark.slow
def test_offline_ingest_session_keeps_a_20000_message_run(
    fresh_broker: RunningBroker, mqtt_client, device_login
) -> None:
    """20,000 QoS 1 messages queue for an offline persistent ingest session (the default
    max_queued_messages of 1,000 would silently drop 19,000 of them)."""
    total = 20_000
    ingest = mqtt_client(
        fresh_broker, "ingest", client_id="ingest-q1", clean_start=False, session_expiry=3600
    )
    ingest.subscribe_and_wait(INGEST_SHARED_SUBSCRIPTION)
    ingest.close()

    device = mqtt_client(
        fresh_broker, device_login("h1", "d1", broker=fresh_broker), max_inflight=100
    )
    topic = telemetry_topic("h1", "d1", "n")
    infos = [device.publish(topic, str(i), qos=1) for i in range(total)]
    device.wait_for(infos[-1].is_published, timeout=60)  # PUBACKs come in order
    assert all(info.is_published() for info in infos)

    ingest = mqtt_client(
        fresh_broker,
        "ingest",
        client_id="ingest-q1",
        clean_start=False,
        session_expiry=3600,
        receive_maximum=1000,
    )
    ingest.wait_for_messages(total, timeout=60)
    assert {int(p) for p in ingest.payloads()} == set(range(total))
    assert "dropped" not in fresh_broker.log_text().lower()
