"""TEST HOOKS: hold a batch at a point of the write path so a test can SIGKILL ingest there.

Only active when ``HEARTH_INGEST_TEST_HOLD_DIR`` is set (refused in production). When
the file ``hold-<point>`` exists in that folder as a batch reaches ``<point>``, the
writer writes ``held-<point>`` (JSON: ``rows``, ``pid``) and waits until the hold file
is removed (then deletes the marker and goes on). Points:

- ``before-commit``: the batch is written in its open transaction, not committed;
- ``before-ack``: the transaction is committed, nothing acknowledged yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Literal

__all__ = ["HoldPoint", "TestHolds"]

log = logging.getLogger(__name__)

HoldPoint = Literal["before-commit", "before-ack"]
_POLL = 0.01


class TestHolds:
    """The hold points of one writer; a no-op when ``folder`` is ``None``."""

    __test__ = False  # not a pytest test class

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    async def hold(self, point: HoldPoint, rows: int) -> None:
        """Wait here while ``hold-<point>`` exists (see the module docstring)."""
        if self.folder is None:
            return
        hold = self.folder / f"hold-{point}"
        if not hold.exists():
            return
        marker = self.folder / f"held-{point}"
        partial = marker.with_suffix(".partial")
        partial.write_text(json.dumps({"rows": rows, "pid": os.getpid()}), encoding="utf-8")
        partial.replace(marker)  # atomic: a reader never sees half a marker
        log.warning("TEST HOOK: holding a batch of %d rows %s", rows, point)
        while hold.exists():  # noqa: ASYNC110 (another process removes the file)
            await asyncio.sleep(_POLL)
        marker.unlink(missing_ok=True)
