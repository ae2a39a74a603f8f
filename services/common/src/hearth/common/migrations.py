"""Alembic per service: each service migrates its own schema with its own history.

A service keeps its migrations inside its package::

    src/hearth/ingest/migrations/
        env.py            three lines, below
        script.py.mako    the revision template (imports sqlmodel)
        versions/         the revision files

``env.py`` only names the service's metadata and hands over to :func:`run_env`::

    from hearth.common.migrations import run_env
    from hearth.ingest.models import IngestModel

    run_env(IngestModel.metadata)

and the service's ``migrate.py`` holds its :class:`Migrations` and the one ``migrate``
coroutine both its lifespan (first step) and its CLI (``hearth-ingest migrate``) run::

    MIGRATIONS = Migrations("hearth.ingest:migrations", IngestModel.metadata)

    async def migrate(settings: IngestSettings | None = None) -> str:
        return await MIGRATIONS.migrate(settings or IngestSettings.load())

What :func:`run_env` guarantees, whoever calls it:

- the service's schema (``metadata.schema``) is created if missing, and
  alembic's version table lives in it (``<schema>.alembic_version``), so two
  services' histories never meet;
- autogenerate compares only that schema: other services' tables in the same
  database are invisible to it;
- concurrent upgrades (several replicas starting at once) queue up behind a
  PostgreSQL advisory lock held for the migration's transaction
  (:func:`migration_lock_key`), and each upgrade runs in one transaction (DDL
  is transactional in PostgreSQL); within one process, alembic commands run one
  at a time (alembic's ``context`` is process-global);
- called from running asyncio code (a lifespan, a test), it reuses the
  connection :class:`Migrations` opened; called from the ``alembic`` command
  line, it opens its own async engine (alembic's async template).

Migration connections never set ``search_path`` (it is forced to ``public``), so
autogenerate always renders the schema explicitly (``schema="ingest"``) and a
revision file means the same thing whichever role runs it.

alembic (with mako and SQLAlchemy's other dialects, ~12 MB of resident memory that
would stay for the life of the process) is imported only when something is to be
done: :meth:`Migrations.upgrade` first compares the database's version table with
the newest revision read from the revision files' own ``revision``/``down_revision``
lines (:func:`script_head`), and returns at once when they agree. A history it
cannot read that simply (branches, merges, computed values) always goes to alembic.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import importlib.resources
import importlib.util
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from hearth.common.db import check_schema, sqlalchemy_url, wait_for_database

if TYPE_CHECKING:
    from hearth.common.settings import HearthSettings

if TYPE_CHECKING:  # alembic is imported where it is used (see the module docstring)
    from alembic.config import Config
    from alembic.script import Script

__all__ = [
    "Migrations",
    "context_options",
    "migration_engine",
    "migration_lock_key",
    "run_env",
    "script_head",
]

VERSION_TABLE = "alembic_version"

_process_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    """This event loop's lock around alembic commands: alembic's ``context`` is process-global."""
    loop = asyncio.get_running_loop()
    lock = _process_locks.get(loop)
    if lock is None:
        lock = _process_locks[loop] = asyncio.Lock()
    return lock


def _schema_of(metadata: MetaData) -> str:
    if metadata.schema is None:
        raise ValueError(
            "a service's metadata must name its schema: build it with "
            "hearth.common.db.service_metadata/service_registry"
        )
    return check_schema(metadata.schema)


def migration_lock_key(schema: str) -> int:
    """The PostgreSQL advisory lock key (signed 64-bit, stable) held while migrating ``schema``."""
    digest = hashlib.blake2b(f"hearth-migrations:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def context_options(metadata: MetaData) -> dict[str, Any]:
    """The alembic context options every Hearth migration runs with.

    Version table in the service's schema; autogenerate over that schema only,
    with column types compared.
    """
    schema = _schema_of(metadata)

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "version_table_schema": schema,
        "include_schemas": True,
        "include_name": include_name,
        "compare_type": True,
    }


def migration_engine(url: str | URL) -> AsyncEngine:
    """A single-connection async engine for migrating: no pool, ``search_path`` = ``public``."""
    return create_async_engine(
        sqlalchemy_url(url),
        poolclass=NullPool,
        connect_args={"server_settings": {"search_path": "public"}},
    )


def _migrate(connection: Connection, metadata: MetaData) -> None:
    """Run the current alembic command on ``connection`` (the online path of :func:`run_env`)."""
    from alembic import context

    schema = _schema_of(metadata)
    context.configure(connection=connection, **context_options(metadata))
    with context.begin_transaction():
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": migration_lock_key(schema)}
        )
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        context.run_migrations()


async def _migrate_url(url: str, metadata: MetaData) -> None:
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, metadata)
            await connection.commit()
    finally:
        await engine.dispose()


def run_env(metadata: MetaData) -> None:
    """The body of every service's ``env.py``: run alembic's current command for ``metadata``.

    Offline (``--sql``) it writes the SQL, ``CREATE SCHEMA`` included. Online it uses
    the connection that :class:`Migrations` put in ``config.attributes["connection"]``,
    else connects to ``-x url=...`` or the config's ``sqlalchemy.url``.
    """
    from alembic import context

    config = context.config
    schema = _schema_of(metadata)
    if context.is_offline_mode():
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        context.configure(
            url=url,
            literal_binds=True,
            dialect_name="postgresql",
            dialect_opts={"paramstyle": "named"},
            **context_options(metadata),
        )
        with context.begin_transaction():
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection, metadata)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: pass -x url=postgresql+asyncpg://... or sqlalchemy.url")
    asyncio.run(_migrate_url(url, metadata))


def _revision_ids(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """``(revision, down_revisions)`` of a revision file, or None unless both are literals."""
    found: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = value = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target, value = node.targets[0].id, node.value
        if target in ("revision", "down_revision", "depends_on") and value is not None:
            try:
                found[target] = ast.literal_eval(value)
            except ValueError:
                return None
    revision, down = found.get("revision"), found.get("down_revision")
    if not isinstance(revision, str) or found.get("depends_on") is not None:
        return None
    if down is None:
        return revision, ()
    if isinstance(down, str):
        return revision, (down,)
    return None  # a merge point: alembic decides


def script_head(versions: Path) -> str | None:
    """The single newest revision in a ``versions/`` folder, read without alembic.

    None when the folder is missing or the history is anything but one straight line
    of literal ids (then the caller asks alembic).
    """
    try:
        files = sorted(versions.glob("*.py"))
        parsed = [_revision_ids(path) for path in files]
    except (OSError, SyntaxError, ValueError):
        return None
    if not parsed or any(item is None for item in parsed):
        return None
    ids = {item[0] for item in parsed if item is not None}
    downs = {down for item in parsed if item is not None for down in item[1]}
    if len(ids) != len(parsed) or not downs <= ids:
        return None
    heads = ids - downs
    return heads.pop() if len(heads) == 1 else None


@dataclass(frozen=True)
class Migrations:
    """A service's alembic migrations: where its scripts live and the metadata they build.

    ``script_location`` is a folder path or a package resource such as
    ``"hearth.ingest:migrations"``. Every coroutine takes the database URL and
    opens (and disposes) its own single connection, in one transaction.
    """

    script_location: str | Path
    metadata: MetaData

    @property
    def schema(self) -> str:
        """The PostgreSQL schema this service's tables and version table live in."""
        return _schema_of(self.metadata)

    @property
    def versions_dir(self) -> Path:
        """The folder of the revision files."""
        location = str(self.script_location)
        if ":" in location:
            package, _, folder = location.partition(":")
            return Path(str(importlib.resources.files(package).joinpath(folder))) / "versions"
        return Path(location) / "versions"

    def config(self, url: str | URL | None = None) -> Config:
        """An alembic ``Config`` for these migrations (no ``alembic.ini`` needed).

        When ruff is installed, new revision files are fixed (``ruff check --fix``:
        unused imports, import order) and formatted, so they pass the project's checks
        as written.
        """
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        config.set_main_option("path_separator", "os")
        if url is not None:
            rendered = sqlalchemy_url(url).render_as_string(hide_password=False)
            config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        if importlib.util.find_spec("ruff") is not None:
            hooks = {"ruff_fix": "check --fix --quiet", "ruff_format": "format --quiet"}
            config.set_section_option("post_write_hooks", "hooks", ", ".join(hooks))
            for name, options in hooks.items():
                config.set_section_option("post_write_hooks", f"{name}.type", "module")
                config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
                config.set_section_option(
                    "post_write_hooks", f"{name}.options", f"{options} REVISION_SCRIPT_FILENAME"
                )
        return config

    async def _run(self, url: str | URL, action: Callable[[Config], Any]) -> Any:
        """Run an alembic command on one fresh connection, in one committed transaction."""

        def call(connection: Connection) -> Any:
            config = self.config()
            config.attributes["connection"] = connection
            return action(config)

        engine = migration_engine(url)
        try:
            async with _process_lock(), engine.begin() as connection:
                return await connection.run_sync(call)
        finally:
            await engine.dispose()

    async def migrate(self, settings: HearthSettings) -> str:
        """Wait for the service's database, bring it to head; where it stands, in words.

        What a service's lifespan does first and its ``migrate`` command does alone:
        waits up to ``settings.database_wait`` seconds for PostgreSQL (several replicas may
        migrate at once: the upgrade is advisory-locked). A database already at head
        imports no alembic (the module docstring says why).
        """
        url = settings.require_database_url()
        await wait_for_database(url, timeout=settings.database_wait)
        await self.upgrade(url)
        head = script_head(self.versions_dir) or self.head()
        return f"{self.schema} schema at {head}"

    async def upgrade(self, url: str | URL, revision: str = "head") -> None:
        """Migrate the database at ``url`` up to ``revision`` (creating the schema if missing).

        Already at head: returns without importing alembic (the module docstring says why).
        """
        if revision == "head" and await self.at_head(url):
            return
        from alembic import command

        await self._run(url, lambda config: command.upgrade(config, revision))

    async def at_head(self, url: str | URL) -> bool:
        """Whether the database is at the newest revision, checked without alembic.

        False also when that cannot be told so simply (the upgrade then asks alembic).
        """
        head = script_head(self.versions_dir)
        if head is None:
            return False
        engine = migration_engine(url)
        query = text(f"SELECT version_num FROM {self.schema}.{VERSION_TABLE}")  # noqa: S608 - a checked schema name
        try:
            async with engine.connect() as connection:
                versions = (await connection.execute(query)).scalars().all()
        except ProgrammingError:  # no schema or no version table yet
            return False
        finally:
            await engine.dispose()
        return list(versions) == [head]

    async def downgrade(self, url: str | URL, revision: str) -> None:
        """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
        from alembic import command

        await self._run(url, lambda config: command.downgrade(config, revision))

    async def current(self, url: str | URL) -> str | None:
        """The revision the database at ``url`` is at; ``None`` before the first upgrade."""
        from alembic.runtime.migration import MigrationContext

        def read(connection: Connection) -> str | None:
            context = MigrationContext.configure(
                connection,
                opts={"version_table": VERSION_TABLE, "version_table_schema": self.schema},
            )
            return context.get_current_revision()

        engine = migration_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    def head(self) -> str | None:
        """The newest revision in the scripts folder (``None`` when there is none)."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config()).get_current_head()

    async def diff(self, url: str | URL) -> list[Any]:
        """What autogenerate would change in the database at ``url``: ``[]`` when in sync.

        Each item is an alembic diff tuple such as ``("add_table", Table)``.
        """

        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        def compare(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts=context_options(self.metadata))
            return list(compare_metadata(context, self.metadata))

        engine = migration_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    async def revision(self, url: str | URL, message: str, *, autogenerate: bool = True) -> Script:
        """Write a new revision file (autogenerated against ``url``) and return it.

        For developers adding a migration; the database must be at head first.
        """

        from alembic import command
        from alembic.script import Script

        def write(config: Config) -> Script:
            script = command.revision(config, message=message, autogenerate=autogenerate)
            if not isinstance(script, Script):
                raise RuntimeError("alembic wrote no single revision")
            return script

        result: Script = await self._run(url, write)
        return result
