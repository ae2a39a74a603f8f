"""The capability feed's contract: snapshots, discovered reports, their topics, declared ranges."""

from __future__ import annotations

import pytest

from hearth.common.capabilities import Metric
from hearth.common.capability_feed import MAX_METRICS, DeviceSnapshot, DiscoveredMetric
from hearth.common.messages import PayloadError
from hearth.common.topics import (
    TopicError,
    discovered_topic,
    ingest_barrier_topic,
    parse_discovered_topic,
    parse_registry_device_topic,
    registry_device_topic,
)

TOO_MANY = b", ".join(b'{"name": "m%d"}' % n for n in range(MAX_METRICS + 1))
"""One metric more than a device may have."""


def test_a_snapshot_round_trips_and_finds_its_metrics() -> None:
    snapshot = DeviceSnapshot(
        home="kitchen",
        device="esp-1",
        metrics=[Metric(name="temp", unit="°C", min=-40, max=85)],
        refuse_undeclared=True,
    )
    again = DeviceSnapshot.from_bytes(snapshot.to_bytes())
    assert again == snapshot
    assert again.metric("temp") == Metric(name="temp", unit="°C", min=-40, max=85)
    assert again.metric("pressure") is None


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b'{"home": "Kitchen", "device": "d", "metrics": []}',
        b'{"home": "k", "device": "d", "metrics": [], "extra": 1}',
        b'{"home": "k", "device": "d", "metrics": [{"name": "t", "min": 5, "max": 1}]}',
        b'{"home": "k", "device": "d", "metrics": [' + TOO_MANY + b"]}",
    ],
)
def test_a_bad_snapshot_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        DeviceSnapshot.from_bytes(payload)
    # Positive control: the same shape, valid.
    DeviceSnapshot.from_bytes(b'{"home": "k", "device": "d", "metrics": [{"name": "t"}]}')


def test_a_discovered_report_names_one_metric_slug() -> None:
    assert DiscoveredMetric.from_bytes(b'{"metric": "co2"}').metric == "co2"
    for bad in (b'{"metric": "CO2"}', b'{"metric": "co2", "unit": "ppm"}', b"co2"):
        with pytest.raises(PayloadError):
            DiscoveredMetric.from_bytes(bad)


def test_the_feed_topics_are_built_and_parsed_with_slugs_only() -> None:
    assert registry_device_topic("k", "d") == "hearth-sys/registry/devices/k/d"
    assert discovered_topic("k", "d") == "hearth-sys/ingest/discovered/k/d"
    assert ingest_barrier_topic("0") == "hearth-sys/ingest/barrier/0"
    assert parse_registry_device_topic("hearth-sys/registry/devices/k/d") == ("k", "d")
    assert parse_discovered_topic("hearth-sys/ingest/discovered/k/d") == ("k", "d")
    for bad in (
        "hearth-sys/registry/devices/k",
        "hearth-sys/registry/devices/K/d",
        "hearth-sys/registry/devices/k/d/x",
        "hearth-sys/ingest/discovered/k/d",
    ):
        with pytest.raises(TopicError):
            parse_registry_device_topic(bad)
    with pytest.raises(TopicError):
        registry_device_topic("k", "D")


def test_a_declared_range_says_which_bound_a_value_breaks() -> None:
    metric = Metric(name="temp", min=-40, max=85)
    assert metric.range_violation(85.0) is None
    assert metric.range_violation(-40.0) is None
    assert metric.range_violation(500.0) == "500.0 is above max 85.0"
    assert metric.range_violation(-41.0) == "-41.0 is below min -40.0"
    assert Metric(name="open").range_violation(1e9) is None  # no range declared
