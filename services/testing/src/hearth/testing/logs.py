"""Keeps each test's logging its own.

``create_service_app`` and ``configure_logging`` put a JSON stdout handler on the
root logger and retune uvicorn's loggers: right for a service process, wrong for a
test process that builds many apps. This autouse fixture undoes both after every
test, so no test sees another's JSON lines or levels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

__all__ = ["restore_logging"]

_TUNED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Restore the root and uvicorn loggers as they were before the test."""
    root = logging.getLogger()
    root_level = root.level
    root_handlers = root.handlers[:]
    saved = [
        (logger, logger.handlers[:], logger.level, logger.propagate)
        for logger in map(logging.getLogger, _TUNED_LOGGERS)
    ]
    yield
    # Only handlers the test added go; pytest's own capture handlers come and go by themselves.
    for handler in [h for h in root.handlers if type(h).__name__ == "_StdoutHandler"]:
        if handler not in root_handlers:
            root.removeHandler(handler)
    root.setLevel(root_level)
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
