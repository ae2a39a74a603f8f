"""Fixtures of the ingest tests: a migrated database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hearth.ingest.migrate import MIGRATIONS
from hearth.testing.database import run_async


@pytest.fixture
def ingest_db(fresh_database: Callable[[], str]) -> str:
    """A new database migrated to ingest's head; its URL."""
    url = fresh_database()
    run_async(MIGRATIONS.upgrade(url))
    return url
