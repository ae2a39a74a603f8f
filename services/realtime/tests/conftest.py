"""Fixtures for the realtime tests: the real auth, registry and realtime on free ports.

``stack`` (module scope) is auth and the registry on fresh databases and the session's
broker, started by the registry tests' own helpers (``registry_helpers``), so realtime is
tested against the services exactly as they run. ``realtime`` (module scope) is the
realtime app on the same broker, asking that registry. ``client`` makes Socket.IO clients
of both kinds (python-socketio and socket.io-client under node) and closes them after.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "registry" / "tests"))

from hearth.testing.apps import RunningApp
from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer
from realtime_helpers import (
    ClientFactory,
    JsClient,
    PyClient,
    SocketClient,
    ensure_js_client,
    realtime_settings,
    start_realtime,
)
from registry_helpers import Stack, running_stack


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Auth and the registry for the module: fresh databases, the session's broker."""
    with running_stack(postgres_server, broker, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def realtime(
    stack: Stack, broker: RunningBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """The realtime service for the module (token leeway 0, at most 4 rooms per socket)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    running, _app = start_realtime(
        realtime_settings(stack, broker, tmp_path_factory.mktemp("realtime"))
    )
    try:
        yield running
    finally:
        running.stop()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with ``socket.io-client`` installed (``npm ci`` when missing)."""
    return ensure_js_client()


@pytest.fixture
async def clients(node: str) -> AsyncIterator[ClientFactory]:
    """Factory ``clients(kind, url)``: a new client of ``kind`` (``python`` or ``js``)."""
    made: list[SocketClient] = []

    def make(kind: str, url: str) -> SocketClient:
        client: SocketClient = JsClient(url, node) if kind == "js" else PyClient(url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
