"""Keeps each test's and each module's logging its own.

``create_service_app`` and ``configure_logging`` put a JSON stdout handler on the
root logger and retune uvicorn's loggers: right for a service process, wrong for a
test process that builds many apps. Two autouse fixtures undo both, so no test sees
another's JSON lines or levels and no fixture has to remember to:

- ``restore_logging`` (function scope): after every test;
- ``restore_module_logging`` (module scope): after every module, for the apps that
  module-scoped fixtures (``auth``, ``stack``, ``realtime``) built. Autouse fixtures are
  set up before the other fixtures of their scope, so it wraps them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

__all__ = ["kept_logging", "restore_logging", "restore_module_logging"]

_TUNED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextmanager
def kept_logging() -> Iterator[None]:
    """Restore the root and uvicorn loggers, as they were on entry, on exit."""
    root = logging.getLogger()
    root_level = root.level
    root_handlers = root.handlers[:]
    saved = [
        (logger, logger.handlers[:], logger.level, logger.propagate)
        for logger in map(logging.getLogger, _TUNED_LOGGERS)
    ]
    try:
        yield
    finally:
        # Only the JSON handlers added meanwhile go; pytest's own capture handlers come
        # and go by themselves.
        for handler in [h for h in root.handlers if type(h).__name__ == "_StdoutHandler"]:
            if handler not in root_handlers:
                root.removeHandler(handler)
        root.setLevel(root_level)
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Restore the root and uvicorn loggers as they were before the test."""
    with kept_logging():
        yield


@pytest.fixture(autouse=True, scope="module")
def restore_module_logging() -> Iterator[None]:
    """Restore the root and uvicorn loggers as they were before the module."""
    with kept_logging():
        yield
