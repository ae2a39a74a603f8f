"""wait_until: poll a condition (an HTTP read, a counter) until it holds, with a bound."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]

_POLL = 0.05


def wait_until(predicate: Callable[[], bool], what: str = "", timeout: float = 10.0) -> None:
    """Return once ``predicate()`` is true; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'condition'} not met within {timeout:g} s")
        time.sleep(_POLL)
