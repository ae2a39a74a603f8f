"""PostgreSQL for the native stack: URLs, the stack's database, and a cluster of our own.

Which server is used is decided (and remembered) by :mod:`hearth.platform.database_choice`.
:class:`OwnCluster` is that cluster: ``initdb`` on first use (trust authentication, user
``postgres``, TCP on 127.0.0.1 only, no Unix socket), started and stopped with ``pg_ctl``.
PostgreSQL refuses to run as root, so as root the programs run through ``runuser -u
postgres`` and the folder is given to the ``postgres`` user. :func:`ensure_database` creates
the stack's database when it is missing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pwd
import shutil
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg

from hearth.platform.pids import ProcessRecord, record_of
from hearth.platform.stack_config import HOST, StackError

__all__ = [
    "OwnCluster",
    "asyncpg_dsn",
    "database_exists",
    "database_url",
    "ensure_database",
    "find_pg_bindir",
    "host_port",
    "run_sync",
    "server_answers",
    "shown_url",
]

_T = TypeVar("_T")

PG_BINDIR_ENV = "HEARTH_PG_BINDIR"


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on a private event loop in a helper thread (safe inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _split(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise StackError(f"not a PostgreSQL URL (postgresql://user@host:port/db): {shown_url(url)}")
    return parts


def _with(url: str, scheme: str, database: str | None = None) -> str:
    parts = _split(url)
    path = parts.path if database is None else f"/{database}"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def asyncpg_dsn(url: str) -> str:
    """``url`` as the ``postgresql://`` DSN ``asyncpg.connect`` takes."""
    return _with(url, "postgresql")


def database_url(server_url: str, name: str) -> str:
    """The ``postgresql+asyncpg://`` URL of database ``name`` on the server of ``server_url``."""
    return _with(server_url, "postgresql+asyncpg", name)


def shown_url(url: str) -> str:
    """``url`` for messages: its password, if any, masked."""
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    netloc = f"{user}{at}{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def host_port(url: str) -> tuple[str, int]:
    """The server's host and port (5432 when the URL names none)."""
    parts = _split(url)
    return parts.hostname or HOST, parts.port or 5432


async def _answers(url: str, timeout: float) -> bool:  # noqa: ASYNC109
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether the database at ``url`` lets us in and answers ``SELECT 1``."""
    return run_sync(_answers(url, timeout))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _ensure(server_url: str, name: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=10)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_quote(name)}")
        except asyncpg.DuplicateDatabaseError:  # created by a racing `up`
            return False
        return True
    finally:
        await conn.close()


def ensure_database(server_url: str, name: str) -> bool:
    """Create database ``name`` on the server of ``server_url`` unless it exists; say if it did.

    ``server_url`` names a database the login can connect to (``postgres``); the login needs
    ``CREATEDB`` when the database is missing.
    """
    try:
        return run_sync(_ensure(server_url, name))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise StackError(
            f"cannot create database {name!r} on {shown_url(server_url)}: {type(exc).__name__}: "
            f"{exc}"
        ) from None


async def _exists(server_url: str, name: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(server_url), timeout=5)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def database_exists(server_url: str, name: str) -> bool:
    """Whether database ``name`` exists on the server (False when the server does not answer)."""
    try:
        return run_sync(_exists(server_url, name))
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False


def find_pg_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when PostgreSQL's server is not installed.

    ``HEARTH_PG_BINDIR`` if set, else the newest ``/usr/lib/postgresql/*/bin`` (Debian keeps
    them off PATH), else wherever ``pg_ctl`` is on PATH.
    """
    if configured := os.environ.get(PG_BINDIR_ENV):
        return Path(configured)

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())

    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=version
    )
    if found:
        return found[-1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").exists():
        return Path(pg_ctl).parent
    return None


class OwnCluster:
    """The stack's own PostgreSQL cluster in ``root`` (``root/data``), listening on ``port``.

    Trust authentication on 127.0.0.1 only (like a developer's local server); the log is
    ``log_file``. As root every program runs as the ``postgres`` user.
    """

    def __init__(self, root: Path, port: int, log_file: Path, bindir: Path | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.log_file = log_file
        self._bindir = bindir
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The URL of its ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/postgres"

    @property
    def initialized(self) -> bool:
        """Whether ``initdb`` has run here."""
        return (self.data / "PG_VERSION").is_file()

    @property
    def bindir(self) -> Path:
        """The folder of the server programs (:class:`StackError` when there is none)."""
        found = self._bindir or find_pg_bindir()
        if found is None:
            raise StackError(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                "apt-get install postgresql, or set HEARTH_PG_BINDIR"
            )
        return found

    def _argv(self, program: str, *args: str) -> list[str]:
        argv = [str(self.bindir / program), *args]
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else argv

    def _run(self, program: str, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            self._argv(program, *args), capture_output=True, text=True, check=False, timeout=timeout
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[-1500:]
            raise StackError(f"{program} {args[0]} failed ({result.returncode}): {detail}")
        return result.stdout

    def _prepare_folder(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if not self._as_postgres:
            return
        entry = pwd.getpwnam("postgres")
        for path in (self.root, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)
        probe = subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-w", str(self.root)],
            capture_output=True,
            check=False,
        )
        if probe.returncode != 0:
            raise StackError(
                f"the postgres user cannot write to {self.root}: a parent folder is not "
                "traversable by others (chmod o+x it), or use HEARTH_POSTGRES=existing"
            )

    def init(self) -> bool:
        """Create the cluster unless it exists; say whether it did."""
        if self.initialized:
            return False
        self._prepare_folder()
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-instructions",
        )  # fmt: skip
        return True

    def postmaster(self) -> ProcessRecord | None:
        """The running postmaster of this cluster (from ``postmaster.pid``), or None."""
        try:
            first = (self.data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
            return record_of("postgres", int(first))
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        """Whether its postmaster runs."""
        return self.postmaster() is not None

    def start(self, timeout: float = 30.0) -> ProcessRecord:
        """Create the cluster if needed, start it unless it runs; return the postmaster."""
        self.init()
        self._prepare_folder()
        if not self.running:
            options = f"-p {self.port} -c listen_addresses={HOST} -c unix_socket_directories=''"
            self._run(
                "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_file), "-w",
                "-t", str(int(timeout)), "-o", options, timeout=timeout + 10,
            )  # fmt: skip
        record = self.postmaster()
        if record is None:
            raise StackError(f"PostgreSQL did not start; see {self.log_file}")
        return record

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop it (``fast``: clients are disconnected, data is safe); say if it was running."""
        if not self.running:
            return False
        self._run(
            "pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", str(int(timeout)),
            timeout=timeout + 10,
        )  # fmt: skip
        return True
