"""The database plumbing every service shares: SQLModel over asyncpg, one schema per service.

A service owns one PostgreSQL schema (its name, e.g. ``ingest``) and its own
SQLAlchemy ``MetaData`` bound to that schema, so its tables, its alembic
history and its autogenerate never mix with another service's, even when all
services share one database. ``SQLModel.metadata`` is global and is never used.

Declaring a service's tables::

    from sqlmodel import Field, SQLModel
    from hearth.common.db import service_registry

    class IngestModel(SQLModel, registry=service_registry("ingest")):
        '''Base of every ingest table model (tables land in schema ``ingest``).'''

    class Reading(IngestModel, table=True):
        id: int | None = Field(default=None, primary_key=True)
        value: float

A class statement (rather than a function returning a base class) keeps type
checkers able to follow the base. ``IngestModel.metadata`` is the service's
metadata; give it to :mod:`hearth.common.migrations`.

Using it from a lifespan::

    engine = create_engine(settings.database_url, schema="ingest")
    await wait_for_database(settings.database_url, timeout=30)
    sessions = session_factory(engine)
    async with sessions() as session:
        ...
    await engine.dispose()

COPY (the fast bulk path) goes through the raw asyncpg connection:
:func:`copy_records` shows how, inside the session's own transaction.

Repositories (one style for every service): a service's ``repository.py`` holds one
:class:`Repository` subclass whose methods are its queries, over one session. The
service's business code opens one per transaction through :class:`Transactions` and
never touches SQLAlchemy itself::

    class RegistryRepository(Repository):
        async def get_home(self, slug: str) -> Home | None:
            return await self.session.get(Home, slug)

    transactions = Transactions(session_factory(engine), RegistryRepository)
    async with transactions() as repo:       # one session, one transaction
        home = await repo.get_home("kitchen")
        repo.add(Membership(...))
        await repo.commit()                  # raises DuplicateRow on a unique violation
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, NoReturn, TypeVar

import asyncpg
from sqlalchemy import Column, DateTime, MetaData, Table, func, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth.common.errors import HearthError

__all__ = [
    "NAMING_CONVENTION",
    "DatabaseUnavailable",
    "DuplicateRow",
    "Repository",
    "Transactions",
    "asyncpg_connection",
    "asyncpg_dsn",
    "check_schema",
    "copy_records",
    "create_engine",
    "database_check",
    "database_ready",
    "service_metadata",
    "service_registry",
    "session_factory",
    "sqlalchemy_url",
    "timestamp_column",
    "wait_for_database",
]

log = logging.getLogger(__name__)

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names, fixed so alembic migrations name them deterministically."""

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE unique_violation


class DatabaseUnavailable(HearthError):
    """The database did not answer (at startup, within the time allowed)."""

    status = 503
    code = "database_unavailable"
    title = "Database unavailable"


class DuplicateRow(HearthError):
    """A commit broke a unique constraint (a row with that key exists, or was just made).

    The service turns it into its own conflict (e.g. ``slug_taken``).
    """

    status = 409
    code = "conflict"
    title = "Conflict"


def check_schema(schema: str) -> str:
    """Return ``schema`` if it is a plain lowercase PostgreSQL identifier, else raise ValueError.

    Plain names need no quoting anywhere (search_path, DDL, COPY), so a typo can't
    turn into SQL.
    """
    if not _SCHEMA.fullmatch(schema):
        raise ValueError(f"schema must match [a-z_][a-z0-9_]{{0,62}}, not {schema!r}")
    return schema


def service_metadata(schema: str) -> MetaData:
    """A fresh ``MetaData`` for one service: its tables live in ``schema``."""
    return MetaData(schema=check_schema(schema), naming_convention=NAMING_CONVENTION)


def service_registry(schema: str) -> registry:
    """A fresh SQLAlchemy registry over :func:`service_metadata`, for a service's SQLModel base.

    Pass it as the ``registry=`` class keyword of the service's base model (see the
    module docstring); every ``table=True`` model under that base is recorded in
    the base's own ``metadata``, never in ``SQLModel.metadata``.
    """
    return registry(metadata=service_metadata(schema))


def timestamp_column(*, nullable: bool = False) -> Any:
    """A ``timestamptz`` column for a table model: ``sa_column=timestamp_column()``.

    Every stored moment is timezone-aware (PostgreSQL keeps microseconds; the platform
    writes :func:`hearth.common.clock.utc_now`, milliseconds). A fresh ``Column`` per
    call: SQLAlchemy binds each column object to one table.
    """
    return Column(DateTime(timezone=True), nullable=nullable)


def sqlalchemy_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL for the asyncpg driver.

    ``postgresql://`` and ``postgres://`` become ``postgresql+asyncpg://``; any other
    driver is refused.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"not a PostgreSQL URL for asyncpg: {parsed.drivername}://...")


def asyncpg_dsn(url: str | URL) -> str:
    """``url`` as a plain ``postgresql://`` DSN that ``asyncpg.connect`` accepts."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(
    url: str | URL,
    *,
    schema: str | None = None,
    application_name: str | None = None,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 10.0,
    pool_recycle: float = 1800.0,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine (asyncpg) for one service.

    With ``schema``, every connection's ``search_path`` is ``<schema>, public``, so
    raw SQL that names a table without its schema finds the service's own tables
    (models name their schema explicitly through their metadata anyway). Connections
    are checked before use (``pool_pre_ping``), recycled after ``pool_recycle``
    seconds, and a request waits at most ``pool_timeout`` seconds for a free one.
    Nothing connects until the engine is first used.
    """
    server_settings: dict[str, str] = {}
    if schema is not None:
        server_settings["search_path"] = f"{check_schema(schema)}, public"
    if application_name is not None:
        server_settings["application_name"] = application_name
    return create_async_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        pool_pre_ping=True,
        echo=echo,
        connect_args={"server_settings": server_settings},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions over ``engine``: SQLModel's ``AsyncSession``, objects usable after commit.

    ``expire_on_commit=False`` because an expired attribute would be lazy-loaded,
    and lazy loads raise ``MissingGreenlet`` under asyncio.
    """
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def database_ready(engine: AsyncEngine, *, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
    """Whether the database answers ``SELECT 1`` within ``timeout`` seconds (for ``/readyz``).

    Never raises: any failure (refused, timed out, pool exhausted) is ``False``.
    """
    try:
        async with asyncio.timeout(timeout), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        log.debug("database not ready", exc_info=True)
        return False
    return True


def database_check(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """A ``/readyz`` check (``add_readiness_check``): fails while the database does not answer."""

    async def check() -> None:
        if not await database_ready(engine):
            raise ConnectionError("the database does not answer")

    return check


async def wait_for_database(url: str | URL, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Block until the database at ``url`` accepts a connection and answers ``SELECT 1``.

    For service startup: retries with a growing delay (0.1 s up to 1 s) and raises
    :class:`DatabaseUnavailable` when ``timeout`` seconds pass first. The error and
    the log never show the password.
    """
    dsn = asyncpg_dsn(url)
    shown = sqlalchemy_url(url).render_as_string(hide_password=True)
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        remaining = deadline - time.monotonic()
        try:
            conn = await asyncpg.connect(dsn, timeout=max(0.1, min(remaining, 5.0)))
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"database {shown} did not answer within {timeout:g} s: {type(exc).__name__}"
                ) from None
            log.info("waiting for database %s (%s)", shown, type(exc).__name__)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        else:
            return


async def asyncpg_connection(target: AsyncSession | AsyncConnection) -> Any:
    """The raw ``asyncpg.Connection`` under a session or connection, in its transaction.

    For what SQLAlchemy does not do (COPY). The connection stays owned by
    SQLAlchemy: don't close it, and finish with it before the session ends.
    """
    conn = await target.connection() if isinstance(target, AsyncSession) else target
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection (closed?)")
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement
        # it runs: without one, raw work would run outside the transaction.
        await conn.execute(text("SELECT 1"))
    return driver


async def copy_records(
    target: AsyncSession | AsyncConnection,
    table: Table,
    records: Iterable[Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> int:
    """COPY ``records`` (tuples in ``columns`` order) into ``table``; return the row count.

    The fastest way to insert many rows (about 4x ``executemany``). It runs on the
    session's connection, so it commits or rolls back with the session's transaction.
    ``table`` is a model's ``__table__``; ``columns`` defaults to all its columns.
    """
    driver = await asyncpg_connection(target)
    names = list(columns) if columns is not None else [c.name for c in table.columns]
    status: str = await driver.copy_records_to_table(
        table.name, schema_name=table.schema, columns=names, records=records
    )
    return int(status.rsplit(" ", 1)[-1])


class Repository:
    """Queries over one session, i.e. one transaction; the service decides when to commit.

    A service's ``repository.py`` subclasses it with its queries (see the module
    docstring); the base stages rows, deletes them, flushes, commits and takes
    transaction-scoped advisory locks. Nothing is committed unless :meth:`commit` is
    called: leaving the :class:`Transactions` block without it rolls back.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *rows: Any) -> None:
        """Stage new or changed table rows for the next flush or commit."""
        self.session.add_all(rows)

    async def delete(self, row: Any) -> None:
        """Stage a row's deletion."""
        await self.session.delete(row)

    async def flush(self) -> None:
        """Send what is staged (inside the transaction), e.g. a parent row before its child.

        :class:`DuplicateRow` (the transaction rolled back) when a unique constraint refused it.
        """
        try:
            await self.session.flush()
        except IntegrityError as exc:
            await self._refused(exc)

    async def commit(self) -> None:
        """Commit the transaction; :class:`DuplicateRow` when a unique constraint refused it."""
        try:
            await self.session.commit()
        except IntegrityError as exc:
            await self._refused(exc)

    async def _refused(self, exc: IntegrityError) -> NoReturn:
        await self.session.rollback()
        if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
            raise DuplicateRow("a row with this key already exists") from None
        raise exc

    async def lock(self, key: int, *, shared: bool = False) -> None:
        """Hold a transaction-scoped advisory lock (released at commit or rollback).

        ``shared`` locks coexist with each other and wait only for an exclusive one.
        """
        take = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
        await self.session.exec(select(take(key)))


R = TypeVar("R", bound=Repository)


class Transactions(Generic[R]):
    """Opens a repository ``R`` over a fresh session: ``async with transactions() as repo``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], repository: type[R]) -> None:
        self._sessions = sessions
        self._repository = repository

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[R]:
        async with self._sessions() as session:
            yield self._repository(session)
