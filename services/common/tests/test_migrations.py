"""hearth.common.migrations with a sample service: upgrade, round trip, downgrade, no drift."""

from __future__ import annotations

import asyncio
import importlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from alembic import command
from sqlmodel import select

from hearth.common.db import asyncpg_dsn, create_engine, session_factory
from hearth.common.migrations import Migrations, migration_lock_key, script_head
from hearth.testing.database import execute, fetch

HERE = Path(__file__).parent
SAMPLE_MIGRATIONS = HERE / "sample_service" / "migrations"


@pytest.fixture(scope="module")
def models() -> Iterator[ModuleType]:
    """The sample service's models module (its env.py imports it by name)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(HERE))
        yield importlib.import_module("sample_service.models")


@pytest.fixture
def migrations(models: ModuleType) -> Migrations:
    return Migrations(SAMPLE_MIGRATIONS, models.SampleModel.metadata)


async def tables_in(url: str, schema: str) -> set[str]:
    rows = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    return {r["tablename"] for r in rows}


async def test_a_table_round_trips_through_migrations(
    migrations: Migrations, models: ModuleType, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    assert await migrations.current(url) is None

    await migrations.upgrade(url)

    assert await migrations.current(url) == migrations.head() == "0001"
    # the schema was created, and the version table lives in it, not in public
    assert await tables_in(url, "sample") == {"gadget", "alembic_version"}
    assert "alembic_version" not in await tables_in(url, "public")
    column = await fetch(
        url,
        "SELECT data_type FROM information_schema.columns"
        " WHERE table_schema = 'sample' AND table_name = 'gadget' AND column_name = 'seen_at'",
    )
    assert column[0]["data_type"] == "timestamp with time zone"

    engine = create_engine(url, schema="sample")
    sessions = session_factory(engine)
    seen = datetime(2026, 11, 21, 10, 0, 0, 250000, tzinfo=UTC)
    try:
        async with sessions() as session:
            session.add(models.Gadget(home="h1", name="lamp", reading=21.5, seen_at=seen))
            await session.commit()
        async with sessions() as session:
            gadget = (await session.exec(select(models.Gadget))).one()
    finally:
        await engine.dispose()
    assert (gadget.home, gadget.name, gadget.reading, gadget.enabled, gadget.seen_at) == (
        "h1",
        "lamp",
        21.5,
        True,
        seen,
    )

    await migrations.downgrade(url, "base")

    assert await migrations.current(url) is None
    assert "gadget" not in await tables_in(url, "sample")


async def test_autogenerate_finds_no_diff_after_upgrade(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    before = await migrations.diff(url)
    assert [d[0] for d in before if isinstance(d, tuple)] == ["add_table", "add_index"]

    await migrations.upgrade(url)
    # other services' tables in the same database are none of this service's business
    await execute(
        url, "CREATE SCHEMA other; CREATE TABLE other.x (id int); CREATE TABLE public.y (id int)"
    )

    assert await migrations.diff(url) == []


async def test_concurrent_upgrades_in_one_process_are_serialised(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    await asyncio.gather(*(migrations.upgrade(url) for _ in range(3)))
    assert await migrations.current(url) == "0001"


async def test_an_upgrade_waits_for_another_replicas_migration_lock(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    key = migration_lock_key("sample")
    other_replica = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await other_replica.execute("SELECT pg_advisory_lock($1)", key)
        upgrade = asyncio.create_task(migrations.upgrade(url))
        deadline = asyncio.get_running_loop().time() + 10
        while not await other_replica.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
        ):
            assert not upgrade.done(), upgrade
            assert asyncio.get_running_loop().time() < deadline, "upgrade never waited"
            await asyncio.sleep(0.01)
        assert "sample" not in {
            r["nspname"] for r in await other_replica.fetch("SELECT nspname FROM pg_namespace")
        }
        await other_replica.execute("SELECT pg_advisory_unlock($1)", key)
        await asyncio.wait_for(upgrade, 10)
    finally:
        await other_replica.close()
    assert await migrations.current(url) == "0001"


async def test_an_autogenerated_revision_migrates_and_matches_the_models(
    models: ModuleType, fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(
        SAMPLE_MIGRATIONS, folder, ignore=shutil.ignore_patterns("0001_*", "__pycache__")
    )
    fresh = Migrations(folder, models.SampleModel.metadata)
    url = fresh_database()

    script = await fresh.revision(url, "create gadget")

    written = await asyncio.to_thread(Path(script.path).read_text)
    assert "import sqlmodel.sql.sqltypes" in written
    lint = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ruff", "check", "--no-cache", script.path],
        capture_output=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    assert 'schema="sample"' in written
    assert "sqlmodel.sql.sqltypes.AutoString(length=63)" in written
    await fresh.upgrade(url)
    assert await fresh.current(url) == script.revision
    assert await fresh.diff(url) == []


def test_offline_mode_writes_the_schema_and_the_tables(
    migrations: Migrations, capsys: pytest.CaptureFixture[str]
) -> None:
    config = migrations.config("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    command.upgrade(config, "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE SCHEMA IF NOT EXISTS sample" in sql
    assert "CREATE TABLE sample.gadget" in sql
    assert "CREATE TABLE sample.alembic_version" in sql


def test_metadata_without_a_schema_is_refused() -> None:
    from sqlalchemy import MetaData

    with pytest.raises(ValueError, match="schema"):
        _ = Migrations(SAMPLE_MIGRATIONS, MetaData()).schema


def test_the_alembic_command_path_opens_its_own_engine(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    """No running loop and no shared connection: env.py connects to the configured URL itself."""
    url = fresh_database()
    command.upgrade(migrations.config(url), "head")
    assert asyncio.run(migrations.current(url)) == "0001"
    command.downgrade(migrations.config(url), "base")
    assert asyncio.run(migrations.current(url)) is None


# --------------------------------------------------------------------------- at head, no alembic


async def test_at_head_is_told_without_alembic_and_only_after_the_upgrade(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    assert script_head(migrations.versions_dir) == "0001"
    assert await migrations.at_head(url) is False  # no schema, no version table yet
    await migrations.upgrade(url)
    assert await migrations.at_head(url) is True
    await execute(url, "UPDATE sample.alembic_version SET version_num = 'older'")
    assert await migrations.at_head(url) is False  # so upgrade asks alembic


def _revision(folder: Path, name: str, revision: str, down: str | None, extra: str = "") -> None:
    body = f'revision: str = "{revision}"\ndown_revision: str | None = {down!r}\n{extra}'
    (folder / f"{name}.py").write_text(body)


def test_script_head_reads_a_straight_history_and_gives_up_on_anything_else(
    tmp_path: Path,
) -> None:
    _revision(tmp_path, "0001_a", "0001", None)
    _revision(tmp_path, "0002_b", "0002", "0001")
    assert script_head(tmp_path) == "0002"
    _revision(tmp_path, "0003_c", "0003", "0001")  # two heads: a branch
    assert script_head(tmp_path) is None
    (tmp_path / "0003_c.py").write_text('revision = "0003"\ndown_revision = ("0001", "0002")\n')
    assert script_head(tmp_path) is None  # a merge point
    (tmp_path / "0003_c.py").write_text('revision = make_id()\ndown_revision = "0002"\n')
    assert script_head(tmp_path) is None  # not a literal
    (tmp_path / "0003_c.py").unlink()
    _revision(tmp_path, "0003_c", "0003", "0002", 'depends_on = "other"\n')
    assert script_head(tmp_path) is None
    assert script_head(tmp_path / "missing") is None


def test_a_service_at_head_starts_without_importing_alembic(
    migrations: Migrations, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    asyncio.run(migrations.upgrade(url))
    code = (
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from sample_service.models import SampleModel\n"
        "from hearth.common.migrations import Migrations\n"
        f"m = Migrations({str(SAMPLE_MIGRATIONS)!r}, SampleModel.metadata)\n"
        f"asyncio.run(m.upgrade({url!r}))\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('alembic', 'mako')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
