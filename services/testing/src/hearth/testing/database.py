"""Real PostgreSQL for tests: the shared server, per-run and per-test databases, own clusters.

Where the session's server comes from, first match wins (:func:`choose_server`):

1. ``HEARTH_TEST_DATABASE_URL`` when set: the server it names (its database is
   only the maintenance database the harness connects to);
2. the PostgreSQL server on 127.0.0.1:5432 when it answers as ``postgres``
   (trust auth);
3. else a throwaway cluster of the harness's own on a free port
   (:class:`PostgresCluster`), removed at the end of the session.

Whichever it is, the run gets a fresh database ``hearth_test_<random>``
(``database_url``), dropped at the end (its connections terminated first), so
runs never see each other's rows. Fixtures:

- ``postgres_server`` (session): the :class:`PostgresServer`;
- ``database_url`` (session): the run's database, a ``postgresql+asyncpg://`` URL;
- ``fresh_database`` (function): a factory; each call creates another empty
  database on the same server and returns its URL; all are dropped after the test;
- ``own_postgres`` (function): a :class:`PostgresCluster` of the test's own, for
  tests that stop or kill PostgreSQL (never the shared server).

Fixtures are synchronous (they work for sync and async tests alike); their
asyncpg calls run on a private event loop in a helper thread.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import asyncpg
import pytest
from sqlalchemy.engine import URL

from hearth.common.db import asyncpg_dsn, sqlalchemy_url
from hearth.platform.postgres import find_pg_bindir as platform_pg_bindir
from hearth.platform.postgres import run_sync
from hearth.platform.postgres import server_answers as url_answers
from hearth.testing.ports import free_port

__all__ = [
    "DATABASE_URL_ENV",
    "LOCAL_HOST",
    "LOCAL_PORT",
    "PostgresCluster",
    "PostgresServer",
    "ServerChoice",
    "choose_server",
    "database_url",
    "execute",
    "fetch",
    "fetchval",
    "find_pg_bindir",
    "fresh_database",
    "own_postgres",
    "postgres_server",
    "server_answers",
    "session_server",
]

DATABASE_URL_ENV = "HEARTH_TEST_DATABASE_URL"
"""Env var naming the PostgreSQL server tests use, as a URL to a database on it."""
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
DATABASE_PREFIX = "hearth_test_"


run_async = run_sync
"""Run a coroutine to completion on a private event loop in a helper thread.

Safe to call from sync code whether or not an event loop runs in this thread (the
platform's :func:`hearth.platform.postgres.run_sync`).
"""


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """The rows of one query, on a fresh connection to the database at ``url``."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def fetchval(url: str, sql: str, *args: object) -> object:
    """The first value of one query, on a fresh connection to the database at ``url``."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def execute(url: str, sql: str, *args: object) -> None:
    """Run one statement on a fresh connection to the database at ``url``."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


def server_answers(host: str = LOCAL_HOST, port: int = LOCAL_PORT, timeout: float = 2.0) -> bool:
    """Whether a PostgreSQL server at ``host:port`` lets ``postgres`` in and answers a query."""
    return url_answers(f"postgresql://postgres@{host}:{port}/postgres", timeout)


@dataclass(frozen=True)
class ServerChoice:
    """Which PostgreSQL server the session uses: ``url`` of its maintenance database.

    ``source`` is ``env`` (``HEARTH_TEST_DATABASE_URL``), ``local`` (127.0.0.1:5432)
    or ``own`` (start a throwaway cluster; ``url`` is then ``None``).
    """

    source: Literal["env", "local", "own"]
    url: str | None


def choose_server(
    env: Mapping[str, str], answers: Callable[[str, int], bool] = server_answers
) -> ServerChoice:
    """Pick the session's server: the env var, else a local server that answers, else our own.

    ``answers(host, port)`` probes the local server; it is not called when the env
    var is set.
    """
    url = env.get(DATABASE_URL_ENV, "").strip()
    if url:
        return ServerChoice("env", str(_render(sqlalchemy_url(url))))
    if answers(LOCAL_HOST, LOCAL_PORT):
        return ServerChoice(
            "local", f"postgresql+asyncpg://postgres@{LOCAL_HOST}:{LOCAL_PORT}/postgres"
        )
    return ServerChoice("own", None)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server tests may create databases on.

    ``url`` is a ``postgresql+asyncpg://`` URL of a database on it the harness
    connects to for ``CREATE``/``DROP DATABASE`` (its role needs ``CREATEDB``).
    """

    url: str
    source: Literal["env", "local", "own"] = "local"

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return sqlalchemy_url(self.url).host or LOCAL_HOST

    @property
    def port(self) -> int:
        """The server's TCP port."""
        return sqlalchemy_url(self.url).port or LOCAL_PORT

    def database_url(self, name: str) -> str:
        """The ``postgresql+asyncpg://`` URL of database ``name`` on this server."""
        return _render(sqlalchemy_url(self.url).set(database=name))

    def create_database(self, prefix: str = DATABASE_PREFIX) -> str:
        """Create an empty database ``<prefix><random>`` and return its URL."""
        name = f"{prefix}{secrets.token_hex(6)}"
        run_async(self._execute(f"CREATE DATABASE {_quote(name)}"))
        return self.database_url(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database (by name or URL), terminating its connections first."""
        name = sqlalchemy_url(name_or_url).database if "://" in name_or_url else name_or_url
        if not name:
            raise ValueError(f"no database name in {name_or_url!r}")
        run_async(self._drop(name))

    async def _execute(self, sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.url), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _drop(self, name: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.url), timeout=10)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)}{force}")
        finally:
            await conn.close()


def find_pg_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``, else RuntimeError.

    Found like the native stack finds it (:func:`hearth.platform.postgres.find_pg_bindir`):
    ``HEARTH_PG_BINDIR`` if set, else the newest ``/usr/lib/postgresql/*/bin`` (Debian
    keeps them off PATH), else wherever ``pg_ctl`` is on PATH.
    """
    bindir = platform_pg_bindir()
    if bindir is None:
        raise RuntimeError(
            "no PostgreSQL server binaries found (initdb, pg_ctl); set HEARTH_PG_BINDIR"
        )
    return bindir


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free port, in a temporary folder.

    ``start()`` creates it on first use (``initdb``, trust auth, user
    ``postgres``) and starts it; ``stop()`` stops it (``fast``: clean;
    ``immediate``: like a crash) keeping its data; ``start()`` again brings it back on
    the same port with the same data; ``destroy()`` stops it and deletes the folder.
    Durability is traded for speed (``fsync=off``): a test cluster only.

    PostgreSQL refuses to run as root: as root the programs run through
    ``runuser -u postgres`` in a folder the ``postgres`` user owns.
    """

    def __init__(self, port: int | None = None, bindir: Path | None = None) -> None:
        self.port = port or free_port()
        self.host = LOCAL_HOST
        self.bindir = bindir or find_pg_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        """URL of the cluster's ``postgres`` database (``postgresql+asyncpg://``)."""
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/postgres"

    @property
    def server(self) -> PostgresServer:
        """This cluster as a :class:`PostgresServer` (to create databases on it)."""
        return PostgresServer(self.url, "own")

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            log = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(args[:1])} failed ({result.returncode}): "
                f"{result.stderr.strip()[-2000:]}\n{log}"
            )
        return result

    @property
    def running(self) -> bool:
        """Whether the cluster's postmaster is running."""
        if not self.data.exists():
            return False
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster on first use, then start it and wait until it accepts connections."""
        if not self.data.exists():
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses={self.host} "
            f"-c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile),
            "-w", "-t", str(int(timeout)), "-o", options,
        )  # fmt: skip

    def stop(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        """Stop the cluster (``immediate`` is a crash: no checkpoint), keeping its data."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def kill(self) -> None:
        """Stop the cluster as abruptly as PostgreSQL allows (``immediate`` mode)."""
        self.stop("immediate")

    def destroy(self) -> None:
        """Stop the cluster if it runs and delete its folder."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class _Cluster(Protocol):
    @property
    def server(self) -> PostgresServer: ...
    def start(self) -> None: ...
    def destroy(self) -> None: ...


@contextlib.contextmanager
def session_server(
    env: Mapping[str, str],
    answers: Callable[[str, int], bool] = server_answers,
    make_cluster: Callable[[], _Cluster] = PostgresCluster,
) -> Iterator[PostgresServer]:
    """The server :func:`choose_server` picks; an own cluster is started and destroyed around it."""
    choice = choose_server(env, answers)
    if choice.url is not None:
        yield PostgresServer(choice.url, choice.source)
        return
    cluster = make_cluster()
    try:
        cluster.start()
        yield cluster.server
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see the module docstring for where it comes from)."""
    with session_server(os.environ) as server:
        yield server


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The run's own database (``postgresql+asyncpg://``), created empty, dropped at the end."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """A factory: each call creates an empty database on the session's server, returns its URL.

    Every database made is dropped after the test.
    """
    made: list[str] = []

    def make() -> str:
        url = postgres_server.create_database()
        made.append(url)
        return url

    yield make
    for url in made:
        postgres_server.drop_database(url)


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster of the test's own, to stop, kill and start again.

    Costs a few seconds (``initdb``); destroyed after the test.
    """
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
