"""The native stack's life cycle through its Python API, with a stand-in service.

Real honcho, real mosquitto, real PostgreSQL (the harness's server, a database of the test's
own). The stand-in service (``python -m http.server``) shows that an entry added to the
service list is migrated, started, reported and stopped like the broker.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.platform.pids import ProcessRecord, descendants, read_record, wait_gone
from hearth.platform.postgres import server_answers
from hearth.platform.services import ServiceSpec
from hearth.platform.stack import Stack
from hearth.platform.stack_config import DEFAULT_PORTS, StackConfig, StackError
from hearth.testing.database import PostgresServer
from hearth.testing.ports import free_port, port_is_open

MIGRATE_TOY = (
    "{python}",
    "-c",
    "import os, pathlib; "
    "pathlib.Path(os.environ['HEARTH_VAR_DIR'], 'toy-migrated').write_text("
    "os.environ['HEARTH_TOY_DATABASE_URL'])",
)
TOY = ServiceSpec(
    name="toy",
    command=("{python}", "-m", "http.server", "{port}", "--bind", "{host}"),
    migrate=MIGRATE_TOY,
)


def _config(var_dir: Path, server: PostgresServer, database: str, **extra: object) -> StackConfig:
    ports = {**DEFAULT_PORTS, "broker": free_port(), "toy": free_port()}
    fields: dict[str, object] = {
        "var_dir": var_dir,
        "project_dir": Path.cwd(),
        "secrets_file": var_dir / "secrets.env",
        "ports": ports,
        "postgres_mode": "existing",
        "postgres_url": server.url,
        "database_name": database,
        "start_timeout": 20.0,
    }
    fields.update(extra)
    return StackConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
def database_name(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"hearth_test_stack_{secrets.token_hex(4)}"
    yield name
    postgres_server.drop_database(name)


def _everything_started(stack: Stack) -> list[ProcessRecord]:
    """honcho, its whole process tree and the recorded processes."""
    run = stack.config.run_dir
    honcho = read_record(run / "honcho.json")
    assert honcho is not None
    records = [r for r in (read_record(p) for p in run.glob("*.json")) if r is not None]
    return [honcho, *descendants(honcho), *records]


def test_up_status_down_with_a_service(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    lines: list[str] = []
    stack = Stack(_config(tmp_path / "var", postgres_server, database_name), [TOY], lines.append)
    config = stack.config
    try:
        status = stack.up()
        assert status.up, status.lines()
        assert [p.name for p in status.parts] == ["honcho", "mosquitto", "database", "toy"]
        toy = status.part("toy")
        toy_record = read_record(config.record_file("toy"))
        assert toy_record is not None
        assert toy.pid == toy_record.pid
        assert toy.address == f"127.0.0.1:{config.port('toy')}"
        with urllib.request.urlopen(f"http://127.0.0.1:{config.port('toy')}/", timeout=5) as r:
            assert r.status == 200
        # migrated before it started, with the stack's database in its own settings
        migrated = (config.var_dir / "toy-migrated").read_text()
        assert migrated.endswith(f"/{database_name}")
        assert migrated.startswith("postgresql+asyncpg://")
        assert config.stack_env.stat().st_mode & 0o777 == 0o600
        assert "HEARTH_TOY_MQTT_PORT=" + str(config.port("broker")) in config.stack_env.read_text()
        assert "toy: exec " in config.procfile.read_text()
        assert any("Stop:" in line for line in lines)

        started = _everything_started(stack)
        assert {r.pid for r in started} >= {toy_record.pid, status.part("mosquitto").pid}

        lines.clear()
        again = stack.up()  # already up: reported, nothing restarted
        assert any("already up" in line for line in lines)
        assert again.part("honcho").pid == status.part("honcho").pid
    finally:
        stopped = stack.down()
    assert {"honcho", "mosquitto", "toy"} <= {s.split()[0] for s in stopped}
    assert wait_gone(started, 1.0) == []
    assert not port_is_open("127.0.0.1", config.port("broker"))
    assert not port_is_open("127.0.0.1", config.port("toy"))
    assert list(config.run_dir.glob("*.json")) == []
    assert server_answers(postgres_server.url)  # the existing server is never stopped
    assert not stack.status().up
    assert stack.down() == []  # idempotent


def test_down_after_honcho_was_killed_stops_its_orphans(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    stack = Stack(_config(tmp_path / "var", postgres_server, database_name), [], lambda _: None)
    try:
        stack.up()
        honcho = read_record(stack.config.record_file("honcho"))
        mosquitto = read_record(stack.config.record_file("mosquitto"))
        assert honcho is not None
        assert mosquitto is not None
        os.kill(honcho.pid, signal.SIGKILL)  # a crash: its processes live on in their sessions
        assert wait_gone([honcho], 5) == []
        assert mosquitto.running()
        status = stack.status()
        assert not status.part("honcho").up
        assert status.part("mosquitto").up
    finally:
        stack.down()
    assert not mosquitto.running()
    assert not port_is_open("127.0.0.1", stack.config.port("broker"))


def test_a_service_that_dies_at_start_leaves_nothing_running(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    broken = ServiceSpec(
        name="toy",
        command=("{python}", "-c", "import sys; print('toy: cannot start'); sys.exit(3)"),
    )
    stack = Stack(
        _config(tmp_path / "var", postgres_server, database_name), [broken], lambda _: None
    )
    with pytest.raises(
        StackError, match=r"toy \(exit status 3\) exited, so honcho stopped the stack"
    ) as caught:
        stack.up()
    assert "toy: cannot start" in str(caught.value)  # the log's end says why
    assert list(stack.config.run_dir.glob("*.json")) == []
    assert not port_is_open("127.0.0.1", stack.config.port("broker"))
    assert not stack.status().part("honcho").up


def test_a_failed_migration_stops_up_before_anything_starts(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    failing = ServiceSpec(
        name="toy",
        command=("{python}", "-m", "http.server", "{port}"),
        migrate=("{python}", "-c", "import sys; sys.exit('revision 0042 is broken')"),
    )
    stack = Stack(
        _config(tmp_path / "var", postgres_server, database_name), [failing], lambda _: None
    )
    with pytest.raises(StackError, match="migrations of toy failed") as caught:
        stack.up()
    assert "revision 0042 is broken" in str(caught.value)
    assert read_record(stack.config.record_file("honcho")) is None
    assert "revision 0042 is broken" in stack.config.log_file.read_text()


def test_a_port_in_use_is_named_with_its_variable(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    import socket

    config = _config(tmp_path / "var", postgres_server, database_name)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", config.port("broker")))
        taken.listen()
        with pytest.raises(StackError, match="HEARTH_BROKER_PORT"):
            Stack(config, [], lambda _: None).up()


@pytest.fixture
def traversable_tmp() -> Iterator[Path]:
    """A folder the ``postgres`` user can reach (pytest's tmp_path parent is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="hearth-stack-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_own_postgres_is_started_and_stopped(
    traversable_tmp: Path, postgres_server: PostgresServer
) -> None:
    config = _config(
        traversable_tmp / "var",
        postgres_server,
        "hearth",
        postgres_mode="own",
        own_postgres_port=free_port(),
    )
    stack = Stack(config, [], lambda _: None)
    try:
        status = stack.up()
        database = status.part("database")
        assert database.up
        assert "our own cluster" in database.detail
        assert database.address == f"127.0.0.1:{config.own_postgres_port}"
        postmaster = read_record(config.record_file("postgres"))
        assert postmaster is not None
        assert database.pid == postmaster.pid
        assert (config.postgres_dir / "data" / "PG_VERSION").is_file()
    finally:
        stopped = stack.down()
    assert any(s.startswith("postgres (pid") for s in stopped)
    assert not postmaster.running()
    assert not port_is_open("127.0.0.1", config.own_postgres_port)
    assert server_answers(postgres_server.url)  # the shared server is untouched
