"""The capability feed on the system bus: the registry's retained device snapshots, and the
metrics ingest reports as discovered (validated, bounded, idempotent)."""

from __future__ import annotations

import json
import time
from typing import Any

from hearth.common.capability_feed import MAX_METRICS, DeviceSnapshot, DiscoveredMetric
from hearth.common.topics import discovered_topic, registry_device_topic, registry_home_topic
from hearth.testing.broker import MqttClientFactory, RunningBroker
from hearth.testing.services import ServiceStack, User


def metric_names(stack: ServiceStack, owner: User, home: str, device: str) -> list[str]:
    response = stack.http.get(f"/registry/homes/{home}/devices/{device}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return [m["name"] for m in response.json()["metrics"]]


def wait_for(what: str, probe: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.02)
    return value


def test_each_device_change_is_a_retained_snapshot_and_a_deletion_clears_it(
    stack: ServiceStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    stack.create_device(
        owner, home, "node", metrics=[{"name": "temperature", "min": -40, "max": 85}]
    )
    # Subscribed after the fact: the snapshot is retained.
    listener = mqtt_client(broker, "ingest")
    listener.subscribe_and_wait(registry_device_topic(home, "node"))
    (first,) = listener.wait_for_messages(1)
    assert first.retain
    snapshot = DeviceSnapshot.from_bytes(first.payload)
    assert (snapshot.home, snapshot.device, snapshot.refuse_undeclared) == (home, "node", False)
    temperature = snapshot.metric("temperature")
    assert temperature is not None
    assert (temperature.min, temperature.max) == (-40, 85)

    changed = stack.http.patch(
        f"/registry/homes/{home}/devices/node",
        json={"refuse_undeclared": True},
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["refuse_undeclared"] is True
    second = listener.wait_for_messages(2)[1]
    assert DeviceSnapshot.from_bytes(second.payload).refuse_undeclared is True

    deleted = stack.http.delete(f"/registry/homes/{home}/devices/node", headers=owner.headers)
    assert deleted.status_code == 204, deleted.text
    assert listener.wait_for_messages(3)[2].payload == b""


def test_discovered_metrics_are_added_once_by_name_and_bad_reports_change_nothing(
    stack: ServiceStack, broker: RunningBroker, mqtt_client: MqttClientFactory
) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    stack.create_device(owner, home, "node", metrics=[{"name": "temperature"}])
    stack.create_device(owner, home, "strict", metrics=[], refuse_undeclared=True)
    full = [{"name": f"m{n}"} for n in range(MAX_METRICS)]
    stack.create_device(owner, home, "full", metrics=full)
    events = mqtt_client(broker, "realtime")
    events.subscribe_and_wait(registry_home_topic(home))
    ingest = mqtt_client(broker, "ingest")

    def report(device: str, payload: bytes) -> None:
        ingest.publish_and_wait(discovered_topic(home, device), payload)

    def good(metric: str) -> bytes:
        return DiscoveredMetric(metric=metric).to_bytes()

    # Refused, each: not JSON, a name outside the grammar, an unknown key, an unknown
    # device, a device refusing undeclared metrics, a device with the most metrics, and a
    # metric the device has already.
    report("node", b"not json")
    report("node", json.dumps({"metric": "Bad Name"}).encode())
    report("node", json.dumps({"metric": "x", "unit": "C"}).encode())
    report("ghost", good("pressure"))
    report("strict", good("pressure"))
    report("full", good("pressure"))
    report("node", good("temperature"))
    # Positive control, reported twice: added once. The registry handles reports in order,
    # so when it shows, every report before it was handled.
    report("node", good("pressure"))
    report("node", good("pressure"))
    wait_for(
        "pressure added",
        lambda: metric_names(stack, owner, home, "node") == ["temperature", "pressure"],
    )
    report("node", good("humidity"))  # a second control: the duplicate before it was handled
    wait_for(
        "humidity added",
        lambda: metric_names(stack, owner, home, "node") == ["temperature", "pressure", "humidity"],
    )
    assert metric_names(stack, owner, home, "strict") == []
    assert metric_names(stack, owner, home, "full") == [m["name"] for m in full]
    # One device event per metric added, nothing for the rest.
    updates = events.wait_for_messages(2)
    assert [json.loads(m.payload)["device"] for m in updates] == ["node", "node"]
    added = stack.http.get(f"/registry/homes/{home}/devices/node", headers=owner.headers).json()
    assert added["metrics"][1] == {
        "name": "pressure",
        "unit": "",
        "kind": "number",
        "min": None,
        "max": None,
    }
