"""Fixtures the registry's command and presence tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer
from hearth.testing.device import TestDevice
from hearth.testing.services import ServiceStack, User, running_stack


@pytest.fixture(scope="module")
def sweeping_stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceStack]:
    """Auth and a registry sweeping every 0.2 s (expiries, ``silent``) on the session broker."""
    folder = tmp_path_factory.mktemp("sweeping")
    with running_stack(postgres_server, broker, folder, sweep_interval=0.2) as stack:
        yield stack


@pytest.fixture(scope="module")
def owner(sweeping_stack: ServiceStack) -> User:
    """The owner of :func:`home`."""
    return sweeping_stack.create_user("owner")


@pytest.fixture(scope="module")
def home(sweeping_stack: ServiceStack, owner: User) -> str:
    """A home of the module's stack."""
    return str(sweeping_stack.create_home(owner)["slug"])


@pytest.fixture
def devices() -> Iterator[list[TestDevice]]:
    """Test devices to disconnect at teardown (append what you make)."""
    made: list[TestDevice] = []
    yield made
    for device in made:
        device.close()
