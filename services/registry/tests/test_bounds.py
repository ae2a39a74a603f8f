"""The registry's memory stays bounded: the live shadow in bytes, the waiters in calls."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hearth.registry.errors import TooManyWaiting
from hearth.registry.shadow import LiveShadow
from hearth.registry.waiters import CommandWaiters

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def test_the_shadow_never_holds_more_than_its_bytes() -> None:
    shadow = LiveShadow(max_bytes=200_000, max_properties=8, max_value_bytes=1024)
    for n in range(5_000):  # a flood of devices, each with many large properties
        for p in range(20):
            shadow.report("h", f"d{n}", f"p{p}", "x" * 900, T0, 900)
            assert shadow.bytes <= 200_000
    assert shadow.evicted > 0
    assert shadow.dropped > 0  # properties beyond the eighth
    assert len(shadow) < 5_000
    # The device heard last is kept, the first ones were forgotten.
    assert set(shadow.reported("h", "d4999")) == {f"p{p}" for p in range(8)}
    assert shadow.reported("h", "d0") == {}


def test_the_shadow_keeps_what_fits_and_refuses_oversized_values() -> None:
    shadow = LiveShadow(max_bytes=1_000_000, max_value_bytes=1024)
    assert shadow.report("h", "lamp", "power", True, T0, 4)
    assert not shadow.report("h", "lamp", "blob", "x" * 2000, T0, 2000)
    shadow.heard("h", "lamp", T0 + timedelta(seconds=1))
    shadow.heard("h", "lamp", T0)  # an older moment never moves last_seen back
    assert shadow.last_seen("h", "lamp") == T0 + timedelta(seconds=1)
    assert shadow.reported("h", "lamp")["power"].value is True
    assert "blob" not in shadow.reported("h", "lamp")
    before = shadow.bytes
    shadow.forget("h", "lamp")
    assert shadow.bytes < before
    assert shadow.reported("h", "lamp") == {}


def test_waiters_are_capped_and_released() -> None:
    async def scenario() -> None:
        waiters = CommandWaiters(capacity=2)
        first, second = uuid.uuid4(), uuid.uuid4()
        waiters.open(first)
        waiters.open(second)
        with pytest.raises(TooManyWaiting):
            waiters.open(uuid.uuid4())
        waiters.notify([first])
        assert await waiters.wait(first, 1.0) is True
        assert await waiters.wait(second, 0.01) is False
        waiters.close(first)
        waiters.close(second)
        assert len(waiters) == 0
        waiters.open(uuid.uuid4())  # room again

    asyncio.run(scenario())
