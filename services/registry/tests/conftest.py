"""Fixtures for the registry tests: the real registry and the real auth on free ports.

``stack`` (module scope) runs one auth and one registry per test module, each on its own
fresh database, both on the session's broker; tests create their own users and homes
(random slugs), so they never depend on each other. Helpers live in
``registry_helpers.py`` (this folder is put on ``sys.path`` for them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer
from registry_helpers import Stack, running_stack


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Auth and the registry for the module: fresh databases, the session's broker."""
    with running_stack(postgres_server, broker, tmp_path_factory.mktemp("registry")) as running:
        yield running
