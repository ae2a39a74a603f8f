"""The pieces between paho and the database, without a broker: inbox batching, classify, limiter."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from hearth.common.capabilities import Metric
from hearth.common.capability_feed import DeviceSnapshot
from hearth.common.telemetry import RejectReason
from hearth.common.topics import registry_device_topic
from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.catalogue import DeviceCatalogue
from hearth.ingest.rejects import INVALID_TOPIC, REASONS, RejectLimiter
from hearth.ingest.repository import ReadingRow
from hearth.ingest.service import classify

NOW = datetime.now(UTC)


def catalogue_of(*snapshots: DeviceSnapshot) -> DeviceCatalogue:
    """A catalogue that heard ``snapshots`` from the registry (no barrier: classify needs none)."""
    catalogue = DeviceCatalogue()
    for snapshot in snapshots:
        catalogue.apply(registry_device_topic(snapshot.home, snapshot.device), snapshot.to_bytes())
    return catalogue


KNOWN = catalogue_of(DeviceSnapshot(home="h", device="d", metrics=[Metric(name="t")]))


def delivery(
    mid: int, payload: bytes = b"1", topic: str = "hearth/h/d/telemetry/t", retain: bool = False
) -> Delivery:
    return Delivery(
        mid=mid,
        qos=1,
        topic=topic,
        payload=payload,
        retain=retain,
        received_at=NOW,
        received_mono=time.monotonic(),
        generation=1,
    )


async def test_a_batch_is_cut_at_max_rows_in_receive_order() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    for mid in range(1, 8):
        inbox.put(delivery(mid))
    first = await inbox.next_batch(max_rows=5, max_delay=10)
    second = await inbox.next_batch(max_rows=5, max_delay=0.01)
    assert [d.mid for d in first] == [1, 2, 3, 4, 5]
    assert [d.mid for d in second] == [6, 7]
    assert len(inbox) == 0


async def test_a_partial_batch_goes_after_max_delay() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    inbox.put(delivery(1))
    started = time.monotonic()
    batch = await inbox.next_batch(max_rows=100, max_delay=0.05)
    assert [d.mid for d in batch] == [1]
    assert 0.03 <= time.monotonic() - started < 1.0


async def test_deliveries_from_another_thread_arrive_complete_and_in_order() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    count = 20_000

    def paho_thread() -> None:
        for mid in range(count):
            inbox.put(delivery(mid))

    thread = threading.Thread(target=paho_thread)
    thread.start()
    got: list[int] = []
    async with asyncio.timeout(10):
        while len(got) < count:
            got += [d.mid for d in await inbox.next_batch(max_rows=5000, max_delay=0.01)]
    thread.join()
    assert got == list(range(count))


def test_classify_sorts_readings_rejects_and_retained() -> None:
    batch = [
        delivery(1, b"21.5"),
        delivery(2, b"21.5", retain=True),
        delivery(3, b"nope"),
        delivery(4, b"1", topic="hearth/h/d/telemetry/Bad"),
        delivery(5, b'{"value": true, "id": "b-7"}'),
    ]
    out = classify(batch, KNOWN, RejectLimiter(rate=1, burst=10), keep_bytes=2)
    assert [(r.value, r.is_bool, r.msg_id) for r in out.readings] == [
        (21.5, False, None),
        (1.0, True, "b-7"),
    ]
    assert isinstance(out.readings[0], ReadingRow)
    assert out.retained == 1
    assert out.reasons == [RejectReason.NOT_A_NUMBER.value, INVALID_TOPIC]
    assert [(r.payload, r.payload_size) for r in out.rejects] == [(b"no", 4), (b"1", 1)]


def test_rejects_over_the_rate_limit_are_counted_but_not_kept() -> None:
    batch = [delivery(mid, b"x") for mid in range(5)]
    out = classify(batch, KNOWN, RejectLimiter(rate=0.001, burst=2))
    assert len(out.reasons) == 5
    assert len(out.rejects) == 2


def test_the_limiter_refills_at_its_rate() -> None:
    clock = [0.0]
    limiter = RejectLimiter(rate=2, burst=1, clock=lambda: clock[0])
    assert [limiter.allow(), limiter.allow()] == [True, False]
    clock[0] = 0.5
    assert limiter.allow()


def test_every_reason_of_common_is_a_label() -> None:
    assert set(REASONS) == {r.value for r in RejectReason} | {INVALID_TOPIC}


def test_readings_are_checked_against_the_devices_capabilities() -> None:
    catalogue = catalogue_of(
        DeviceSnapshot(
            home="h",
            device="d",
            metrics=[Metric(name="t", min=-40, max=85), Metric(name="on", kind="boolean")],
        ),
        DeviceSnapshot(home="h", device="strict", metrics=[], refuse_undeclared=True),
    )
    batch = [
        delivery(1, b"85", topic="hearth/h/d/telemetry/t"),  # at the bound: stored
        delivery(2, b"500", topic="hearth/h/d/telemetry/t"),
        delivery(3, b"-41", topic="hearth/h/d/telemetry/t"),
        delivery(4, b"true", topic="hearth/h/d/telemetry/on"),
        delivery(5, b"1013", topic="hearth/h/d/telemetry/pressure"),  # undeclared: stored
        delivery(6, b"1014", topic="hearth/h/d/telemetry/pressure"),  # reported once
        delivery(7, b"1", topic="hearth/h/nobody/telemetry/t"),
        delivery(8, b"1", topic="hearth/h/strict/telemetry/t"),
    ]
    out = classify(batch, catalogue, RejectLimiter(rate=1, burst=10))
    assert [(r.device, r.metric, r.value) for r in out.readings] == [
        ("d", "t", 85.0),
        ("d", "on", 1.0),
        ("d", "pressure", 1013.0),
        ("d", "pressure", 1014.0),
    ]
    assert out.discovered == [("h", "d", "pressure")]
    assert out.reasons == [
        RejectReason.OUT_OF_DECLARED_RANGE,
        RejectReason.OUT_OF_DECLARED_RANGE,
        RejectReason.UNKNOWN_DEVICE,
        RejectReason.UNDECLARED_METRIC,
    ]
    details = [r.detail for r in out.rejects]
    assert details[0] == "500.0 is above max 85.0"
    assert details[1] == "-41.0 is below min -40.0"


def test_a_removed_snapshot_makes_the_device_unknown_and_malformed_ones_are_ignored() -> None:
    catalogue = catalogue_of(DeviceSnapshot(home="h", device="d", metrics=[]))
    assert catalogue.check("h", "d", "t", 1.0, False) is not None  # discovered, not a reject
    catalogue.apply(registry_device_topic("h", "e"), b"{not json")
    catalogue.apply(
        registry_device_topic("h", "e"),
        DeviceSnapshot(home="h", device="other", metrics=[]).to_bytes(),  # another device's
    )
    assert catalogue.malformed == 2
    assert len(catalogue) == 1
    catalogue.apply(registry_device_topic("h", "d"), b"")
    assert len(catalogue) == 0
    assert catalogue.check("h", "d", "t", 1.0, False) == (
        RejectReason.UNKNOWN_DEVICE,
        "the registry knows no device 'd' in 'h'",
    )


async def test_the_catalogue_is_ready_only_when_this_connections_barrier_comes_back() -> None:
    catalogue = DeviceCatalogue()
    catalogue.attach(asyncio.get_running_loop())
    old = catalogue.expect_barrier()
    new = catalogue.expect_barrier()
    catalogue.barrier(old.encode())  # an older connection's: not ready
    assert not await catalogue.wait_ready(0.05)
    catalogue.barrier(new.encode())
    assert await catalogue.wait_ready(5)
    catalogue.connection_lost()
    await asyncio.sleep(0)
    assert not catalogue.ready
