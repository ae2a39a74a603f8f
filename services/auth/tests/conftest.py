"""Fixtures for the auth tests: the real service on a free port, real PostgreSQL and Mosquitto.

``auth`` (module scope) runs one auth service per test module against its own fresh
database and the session's broker; tests create their own users, so they never
depend on each other. ``make_auth`` starts another one (fresh database, options).
Helpers live in ``auth_helpers.py`` (this folder is put on ``sys.path`` for them).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from auth_helpers import AuthStack, auth_settings, start_auth, stop_auth
from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer


@pytest.fixture(scope="module")
def auth(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AuthStack]:
    """One auth service for the module: fresh database, session broker, seeded admin."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    url = postgres_server.create_database()
    stack = start_auth(auth_settings(url, broker, tmp_path_factory.mktemp("auth")))
    try:
        yield stack
    finally:
        stop_auth(stack)
        postgres_server.drop_database(url)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.fixture
def make_auth(
    fresh_database: Callable[[], str], broker: RunningBroker, tmp_path: Path
) -> Iterator[Callable[..., AuthStack]]:
    """Factory: ``make_auth(database_url=None, **settings) -> AuthStack``; stopped after."""
    stacks: list[AuthStack] = []

    def make(database_url: str | None = None, **overrides: Any) -> AuthStack:
        settings = auth_settings(database_url or fresh_database(), broker, tmp_path, **overrides)
        stack = start_auth(settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in reversed(stacks):
        stop_auth(stack)
