"""The database harness: where the server comes from, fresh databases, an own cluster for real."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from hearth.common.db import asyncpg_dsn, sqlalchemy_url
from hearth.testing.database import (
    DATABASE_URL_ENV,
    LOCAL_HOST,
    LOCAL_PORT,
    PostgresCluster,
    PostgresServer,
    choose_server,
    run_async,
    server_answers,
    session_server,
)
from hearth.testing.ports import free_port


def never_asked(host: str, port: int) -> bool:
    raise AssertionError("the local server must not be probed when the env var is set")


def test_the_env_var_wins_and_nothing_is_probed() -> None:
    choice = choose_server({DATABASE_URL_ENV: "postgresql://ci:pw@db.example:6543/ci"}, never_asked)
    assert choice.source == "env"
    assert choice.url == "postgresql+asyncpg://ci:pw@db.example:6543/ci"


def test_a_local_server_that_answers_is_next() -> None:
    asked: list[tuple[str, int]] = []

    def answers(host: str, port: int) -> bool:
        asked.append((host, port))
        return True

    choice = choose_server({DATABASE_URL_ENV: "  "}, answers)
    assert asked == [(LOCAL_HOST, LOCAL_PORT)]
    assert choice.source == "local"
    assert choice.url == "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def test_with_neither_the_harness_starts_its_own() -> None:
    choice = choose_server({}, lambda host, port: False)
    assert (choice.source, choice.url) == ("own", None)


class FakeCluster:
    """Stands in for PostgresCluster to test the glue (the real one is tested below)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.server = PostgresServer("postgresql+asyncpg://postgres@127.0.0.1:1/postgres", "own")

    def start(self) -> None:
        self.calls.append("start")

    def destroy(self) -> None:
        self.calls.append("destroy")


def test_the_session_starts_and_destroys_its_own_cluster_only_when_needed() -> None:
    made: list[FakeCluster] = []

    def make() -> FakeCluster:
        made.append(FakeCluster())
        return made[-1]

    with session_server({}, lambda host, port: False, make) as server:
        assert server.source == "own"
        assert made[0].calls == ["start"]
    assert made[0].calls == ["start", "destroy"]

    with session_server({}, lambda host, port: True, make) as server:
        assert (server.source, server.port) == ("local", LOCAL_PORT)
    assert len(made) == 1  # no cluster when a server answers


def test_nothing_listening_does_not_answer() -> None:
    assert not server_answers(LOCAL_HOST, free_port(), timeout=1.0)


async def query(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_the_run_gets_its_own_empty_database(database_url: str) -> None:
    name = sqlalchemy_url(database_url).database
    assert name is not None
    assert name.startswith("hearth_test_")
    assert run_async(query(database_url, "SELECT current_database()")) == name
    tables = (
        "SELECT count(*) FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    assert run_async(query(database_url, tables)) == 0


def test_fresh_databases_are_distinct(fresh_database: Callable[[], str], database_url: str) -> None:
    first, second = fresh_database(), fresh_database()
    assert len({first, second, database_url}) == 3
    run_async(execute(first, "CREATE TABLE only_here (id int)"))
    exists = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'"
    assert run_async(query(second, exists)) == 0


def test_a_dropped_database_is_gone_even_with_a_connection_open(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database(prefix="hearth_test_drop_")
    name = sqlalchemy_url(url).database

    async def hold_and_drop() -> object:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            postgres_server.drop_database(url)  # terminates ``conn`` first
        finally:
            await conn.close()
        return await query(
            postgres_server.url, "SELECT count(*) FROM pg_database WHERE datname = $1", name
        )

    assert run_async(hold_and_drop()) == 0


@pytest.mark.slow
def test_an_own_cluster_stops_and_starts_with_its_data(own_postgres: PostgresCluster) -> None:
    """The throwaway cluster path for real (initdb as the postgres user, stop, crash, start)."""
    url = own_postgres.url
    assert own_postgres.running
    assert server_answers(own_postgres.host, own_postgres.port)
    run_async(execute(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"))

    own_postgres.stop()
    assert not own_postgres.running
    assert not server_answers(own_postgres.host, own_postgres.port, timeout=1.0)

    own_postgres.start()
    assert run_async(query(url, "SELECT v FROM kept")) == 42

    own_postgres.kill()  # immediate: recovery on the next start
    own_postgres.start()
    assert run_async(query(url, "SELECT v FROM kept")) == 42
    # databases can be made on it like on the shared server
    other = own_postgres.server.create_database()
    assert run_async(query(other, "SELECT 1")) == 1
