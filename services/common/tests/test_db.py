"""hearth.common.db on a real PostgreSQL: metadata per service, sessions, COPY, readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, select

from hearth.common.db import (
    DatabaseUnavailable,
    DuplicateRow,
    Repository,
    Transactions,
    asyncpg_dsn,
    check_schema,
    copy_records,
    create_engine,
    database_check,
    database_ready,
    service_registry,
    session_factory,
    sqlalchemy_url,
    timestamp_column,
    wait_for_database,
)
from hearth.testing.ports import free_port


class AlphaModel(SQLModel, registry=service_registry("alpha")):
    """Base of the first test service's tables."""


class BetaModel(SQLModel, registry=service_registry("beta")):
    """Base of the second test service's tables."""


class Note(AlphaModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str
    at: datetime


class Tag(AlphaModel, table=True):
    """A row with a unique key, to see a duplicate refused."""

    name: str = Field(primary_key=True)
    at: datetime = Field(sa_column=timestamp_column())


class BetaNote(BetaModel, table=True):
    """Same table name as ``Note``, other service: must not clash."""

    __tablename__ = "note"
    id: int | None = Field(default=None, primary_key=True)
    score: float


def test_each_service_base_has_its_own_metadata_and_schema() -> None:
    assert set(AlphaModel.metadata.tables) == {"alpha.note", "alpha.tag"}
    assert set(BetaModel.metadata.tables) == {"beta.note"}
    assert AlphaModel.metadata is not BetaModel.metadata
    assert Note.__table__.schema == "alpha"  # type: ignore[attr-defined]
    assert not {"alpha.note", "alpha.tag", "beta.note"} & set(SQLModel.metadata.tables)


def test_schema_names_are_plain_identifiers() -> None:
    assert check_schema("ingest") == "ingest"
    for bad in ("Ingest", "in gest", "x;drop", "1abc", "", "a" * 64):
        with pytest.raises(ValueError, match="schema"):
            check_schema(bad)


def test_urls_are_normalised_for_asyncpg() -> None:
    assert sqlalchemy_url("postgresql://u:p@h:1/d").drivername == "postgresql+asyncpg"
    assert sqlalchemy_url("postgres://u@h/d").drivername == "postgresql+asyncpg"
    assert asyncpg_dsn("postgresql+asyncpg://u:p%40x@h:1/d") == "postgresql://u:p%40x@h:1/d"
    with pytest.raises(ValueError, match="asyncpg"):
        sqlalchemy_url("mysql://u@h/d")


@pytest.fixture
async def alpha_engine(fresh_database: Callable[[], str]) -> AsyncIterator[AsyncEngine]:
    """An engine for schema ``alpha`` on an empty database with both services' tables created."""
    url = fresh_database()
    engine = create_engine(url, schema="alpha", application_name="hearth-test")
    async with engine.begin() as conn:
        for base in (AlphaModel, BetaModel):
            await conn.execute(text(f"CREATE SCHEMA {base.metadata.schema}"))
            await conn.run_sync(base.metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_row_round_trips_through_a_session(alpha_engine: AsyncEngine) -> None:
    sessions = session_factory(alpha_engine)
    at = datetime(2026, 11, 21, 10, 0, 0, 123000, tzinfo=UTC)
    async with sessions() as session:
        note = Note(text="hello", at=at)
        session.add(note)
        await session.commit()
        assert note.id is not None  # readable after commit: expire_on_commit=False
    async with sessions() as session:
        found = (await session.exec(select(Note).where(Note.id == note.id))).one()
    assert (found.text, found.at) == ("hello", at)


class AlphaRepository(Repository):
    async def tag(self, name: str) -> Tag | None:
        return await self.session.get(Tag, name)


async def test_a_repository_commits_only_when_told_and_refuses_a_duplicate(
    alpha_engine: AsyncEngine,
) -> None:
    transactions = Transactions(session_factory(alpha_engine), AlphaRepository)
    at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    async with transactions() as repo:
        repo.add(Tag(name="left", at=at))
        await repo.flush()
        assert await repo.tag("left") is not None  # visible inside its transaction
    async with transactions() as repo:  # ...but never committed
        assert await repo.tag("left") is None
        repo.add(Tag(name="kept", at=at))
        await repo.lock(42)
        await repo.commit()
    async with transactions() as repo:
        found = await repo.tag("kept")
        assert found is not None
        assert found.at == at
    async with transactions() as repo:
        repo.add(Tag(name="kept", at=at))
        with pytest.raises(DuplicateRow) as refused:
            await repo.commit()
        assert refused.value.status == 409
    async with transactions() as repo:
        kept = await repo.tag("kept")
        assert kept is not None
        await repo.delete(kept)
        await repo.commit()
    async with transactions() as repo:
        assert await repo.tag("kept") is None


async def test_search_path_finds_the_service_schema_first(alpha_engine: AsyncEngine) -> None:
    async with alpha_engine.connect() as conn:
        assert (await conn.execute(text("SHOW search_path"))).scalar_one() == "alpha, public"
        # unqualified raw SQL lands on alpha.note, not beta.note
        await conn.execute(text("INSERT INTO note (text, at) VALUES ('raw', now())"))
        alpha = (await conn.execute(text("SELECT count(*) FROM alpha.note"))).scalar_one()
        beta = (await conn.execute(text("SELECT count(*) FROM beta.note"))).scalar_one()
        name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar()
    assert (alpha, beta, name) == (1, 0, "hearth-test")


async def test_copy_runs_in_the_session_transaction(alpha_engine: AsyncEngine) -> None:
    sessions = session_factory(alpha_engine)
    table = Note.__table__  # type: ignore[attr-defined]
    at = datetime.now(UTC)
    rows = [(f"n{i}", at) for i in range(1000)]
    async with sessions() as session:
        assert await copy_records(session, table, rows, columns=["text", "at"]) == 1000
        count = (await session.exec(text("SELECT count(*) FROM alpha.note"))).scalar_one()  # type: ignore[call-overload]
        assert count == 1000
        await session.rollback()
    async with sessions() as session:
        assert await copy_records(session, table, rows[:10], columns=["text", "at"]) == 10
        await session.commit()
    async with alpha_engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM alpha.note"))).scalar_one() == 10


async def test_database_ready_says_yes_and_no(alpha_engine: AsyncEngine) -> None:
    assert await database_ready(alpha_engine)
    await database_check(alpha_engine)()  # the /readyz check passes
    dead = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        assert not await database_ready(dead, timeout=2.0)
        with pytest.raises(ConnectionError, match="does not answer"):
            await database_check(dead)()
    finally:
        await dead.dispose()


async def test_wait_for_database_returns_when_it_answers(database_url: str) -> None:
    await wait_for_database(database_url, timeout=5)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        assert (
            await conn.fetchval("SELECT current_database()")
            == sqlalchemy_url(database_url).database
        )
    finally:
        await conn.close()


async def test_wait_for_database_gives_up_without_showing_the_password() -> None:
    url = f"postgresql+asyncpg://postgres:very-secret-pw@127.0.0.1:{free_port()}/x"
    with pytest.raises(DatabaseUnavailable, match=r"did not answer within 0\.3 s") as caught:
        await wait_for_database(url, timeout=0.3)
    assert "very-secret-pw" not in str(caught.value)
    assert caught.value.status == 503
