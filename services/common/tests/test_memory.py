"""Freed heap memory goes back to the OS: trim_heap, HeapTrimmer, and the app's lifespan."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from asgi_lifespan import LifespanManager

from hearth.common.memory import HeapTrimmer, trim_heap
from hearth.common.settings import HearthSettings
from hearth.common.web import create_service_app


def rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) * 1024


def test_trimming_returns_freed_heap_pages() -> None:
    trim_heap()
    # 1 KiB objects come from malloc (pymalloc serves only up to 512 bytes): 80 MB of them,
    # then all freed but the last, which pins the top of the heap so the pages stay put.
    chunks = [bytes(1024) for _ in range(80_000)]
    keep = bytes(1024)
    del chunks
    before = rss_bytes()
    assert trim_heap()  # glibc: this machine's C library has malloc_trim
    after = rss_bytes()
    assert before - after > 40_000_000, (before, after)
    assert keep == bytes(1024)


async def test_the_trimmer_trims_at_start_and_then_periodically() -> None:
    trimmer = HeapTrimmer(interval=0.05)
    trimmer.start()
    assert trimmer.trims == 1
    deadline = time.monotonic() + 30
    while trimmer.trims < 3:
        assert time.monotonic() < deadline, "no periodic trim"
        await asyncio.sleep(0.01)
    await trimmer.stop()
    stopped_at = trimmer.trims
    await asyncio.sleep(0.2)
    assert trimmer.trims == stopped_at  # stopped means stopped


async def test_an_interval_of_zero_trims_only_once() -> None:
    trimmer = HeapTrimmer(interval=0)
    trimmer.start()
    await asyncio.sleep(0.05)
    assert trimmer.trims == 1
    await trimmer.stop()


async def test_the_service_lifespan_runs_and_stops_the_trimmer() -> None:
    settings = HearthSettings(env="test", service="sample", replica="r1", heap_trim_interval=0.05)
    app = create_service_app(settings, title="sample")
    async with LifespanManager(app):
        deadline = time.monotonic() + 30
        while not any(t.get_name() == "heap-trim" for t in asyncio.all_tasks()):
            assert time.monotonic() < deadline, "no trimmer task in the lifespan"
            await asyncio.sleep(0.01)
    assert not any(t.get_name() == "heap-trim" for t in asyncio.all_tasks())
