"""The pieces between paho and the database, without a broker: inbox batching, classify, limiter."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from hearth.common.telemetry import RejectReason
from hearth.ingest.batcher import Delivery, Inbox
from hearth.ingest.rejects import INVALID_TOPIC, REASONS, RejectLimiter
from hearth.ingest.repository import ReadingRow
from hearth.ingest.service import classify

NOW = datetime.now(UTC)


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
    out = classify(batch, RejectLimiter(rate=1, burst=10), keep_bytes=2)
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
    out = classify(batch, RejectLimiter(rate=0.001, burst=2))
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
