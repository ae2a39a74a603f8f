"""Waiting on a condition with a generous bound (tests never sleep a fixed time)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(
    predicate: Callable[[], bool],
    what: str = "the condition",
    timeout: float = 10.0,
    poll: float = 0.02,
) -> None:
    """Return once ``predicate()`` is true; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)
