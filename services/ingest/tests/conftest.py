"""Fixtures of the ingest tests: a migrated database, SQL helpers."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from hearth.common.db import asyncpg_dsn
from hearth.ingest.migrate import MIGRATIONS
from hearth.testing.database import run_async


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one query on a fresh connection."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def fetchval(url: str, sql: str, *args: object) -> object:
    """The first value of one query on a fresh connection."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
def ingest_db(fresh_database: Callable[[], str]) -> str:
    """A new database migrated to ingest's head; its URL."""
    url = fresh_database()
    run_async(MIGRATIONS.upgrade(url))
    return url
