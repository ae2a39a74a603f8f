"""The native stack's life cycle through its Python API, with a stand-in service.

Real supervisord, real mosquitto, real PostgreSQL (the harness's server, a database of the
test's own). The stand-in service (``python -m http.server``) shows that an entry added to
the service list is migrated, started, reported, restarted when it dies and stopped like
the broker; a stand-in with a broken setting shows the failed state and the recovery.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hearth.platform.front_door_config import FrontDoorOptions
from hearth.platform.pids import ProcessRecord, read_record, wait_gone
from hearth.platform.postgres import server_answers
from hearth.platform.services import ServiceSpec
from hearth.platform.stack import Stack
from hearth.platform.stack_config import DEFAULT_PORTS, StackConfig, StackError
from hearth.platform.stack_files import StartHistory
from hearth.platform.supervisor_config import START_RETRIES
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
BROKEN_UNLESS_FIXED = ServiceSpec(
    name="toy",
    command=(
        "{python}",
        "-c",
        "import os, sys, runpy; "
        "bad = os.environ.get('HEARTH_TOY_SETTING') == 'broken'; "
        "bad and sys.exit('toy: HEARTH_TOY_SETTING=broken is not a valid setting'); "
        "sys.argv = ['http.server', '{port}', '--bind', '{host}']; "
        "runpy.run_module('http.server', run_name='__main__')",
    ),
)


def _config(var_dir: Path, server: PostgresServer, database: str, **extra: object) -> StackConfig:
    ports = {
        **DEFAULT_PORTS,
        **{name: free_port() for name in ("broker", "toy", "web", "mqtts")},
    }
    fields: dict[str, object] = {
        "var_dir": var_dir,
        "project_dir": Path.cwd(),
        "secrets_file": var_dir / "secrets.env",
        "ports": ports,
        "postgres_mode": "existing",
        "postgres_url": server.url,
        "database_name": database,
        "start_timeout": 60.0,
    }
    fields.update(extra)
    return StackConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture
def database_name(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"hearth_test_stack_{secrets.token_hex(4)}"
    yield name
    postgres_server.drop_database(name)


def _everything_started(stack: Stack) -> list[ProcessRecord]:
    """supervisord and every recorded process."""
    run = stack.config.run_dir
    records = [r for r in (read_record(p) for p in run.glob("*.json")) if r is not None]
    assert any(r.name == "supervisord" for r in records)
    return records


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for ``condition``; return the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_up_status_down_with_a_service(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    lines: list[str] = []
    stack = Stack(_config(tmp_path / "var", postgres_server, database_name), [TOY], lines.append)
    config = stack.config
    try:
        status = stack.up()
        assert status.up, status.lines()
        assert [p.name for p in status.parts] == [
            "supervisord", "mosquitto", "database", "toy", "web",
        ]  # fmt: skip
        toy = status.part("toy")
        toy_record = read_record(config.record_file("toy"))
        assert toy_record is not None
        assert toy.pid == toy_record.pid
        assert toy.address == f"127.0.0.1:{config.port('toy')}"
        assert toy.state in ("starting", "running")  # listening: up, even within startsecs
        assert toy.restarts == 0
        assert toy.rss is not None
        assert toy.rss > 1_000_000
        assert toy.uptime is not None
        assert status.total_rss >= toy.rss + (status.part("mosquitto").rss or 0)
        with urllib.request.urlopen(f"http://127.0.0.1:{config.port('toy')}/", timeout=5) as r:
            assert r.status == 200
        # migrated before it started, with the stack's database in its own settings
        migrated = (config.var_dir / "toy-migrated").read_text()
        assert migrated.endswith(f"/{database_name}")
        assert migrated.startswith("postgresql+asyncpg://")
        assert config.stack_env.stat().st_mode & 0o777 == 0o600
        assert "HEARTH_TOY_MQTT_PORT=" + str(config.port("broker")) in config.stack_env.read_text()
        assert "[program:toy]" in config.supervisor_config.read_text()
        assert config.process_log("mosquitto").exists()  # one log file per process
        summary = "\n".join(lines)
        assert f"toy:      http://127.0.0.1:{config.port('toy')}/docs" in summary
        web = f"http://127.0.0.1:{config.port('web')}"
        assert f"web:      {web}/  (every API on one origin; docs: {web}/docs/)" in summary
        with urllib.request.urlopen(f"{web}/docs/", timeout=5) as r:  # noqa: S310
            assert b"swagger-ui-bundle.js" in r.read()  # the front door runs, with the portal
        assert f"mqtt://127.0.0.1:{config.port('broker')}" in summary
        assert "login `admin`; its password is HEARTH_AUTH_ADMIN_PASSWORD in" in summary
        assert "remembered in" in summary

        started = _everything_started(stack)
        assert {r.pid for r in started} >= {toy_record.pid, status.part("mosquitto").pid}

        lines.clear()
        again = stack.up()  # already up: reported, nothing restarted
        assert any("already up" in line for line in lines)
        assert again.part("supervisord").pid == status.part("supervisord").pid
        assert again.part("toy").pid == toy.pid
    finally:
        stopped = stack.down()
    assert {"supervisord", "mosquitto", "toy"} <= {s.split()[0] for s in stopped}
    assert wait_gone(started, 1.0) == []
    assert not port_is_open("127.0.0.1", config.port("broker"))
    assert not port_is_open("127.0.0.1", config.port("toy"))
    assert not port_is_open("127.0.0.1", config.port("web"))
    assert list(config.run_dir.glob("*.json")) == []
    assert server_answers(postgres_server.url)  # the existing server is never stopped
    assert not stack.status().up
    assert stack.down() == []  # idempotent


def test_tls_generated_serves_https_and_mqtts_with_the_platform_ca(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    options = FrontDoorOptions(tls="generated", tls_names=("hearth.lan",))
    lines: list[str] = []
    config = _config(tmp_path / "var", postgres_server, database_name, front_door=options)
    stack = Stack(config, [TOY], lines.append)
    try:
        assert stack.up().up
        ca = config.tls_dir / "ca.crt"
        trusting = ssl.create_default_context(cafile=str(ca))
        web = f"https://127.0.0.1:{config.port('web')}"
        with urllib.request.urlopen(f"{web}/tls/ca.crt", context=trusting, timeout=5) as r:  # noqa: S310
            assert r.read() == ca.read_bytes()  # devices download the CA here
        summary = "\n".join(lines)
        assert f"web:      {web}/" in summary
        assert f"mqtts://127.0.0.1:{config.port('mqtts')}" in summary
        # The broker's TLS listener has the same certificate: a verified handshake works...
        mqtts = ("127.0.0.1", config.port("mqtts"))
        with (
            socket.create_connection(mqtts, timeout=5) as raw,
            trusting.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        # ...and the web port speaks only TLS now (nginx: 400, plain HTTP to an HTTPS port).
        with pytest.raises(urllib.error.HTTPError) as plain:
            urllib.request.urlopen(f"http://127.0.0.1:{config.port('web')}/", timeout=5)
        assert plain.value.code == 400
        plain.value.close()
    finally:
        stack.down()
    assert not port_is_open("127.0.0.1", config.port("mqtts"))


def test_plain_mqtt_off_leaves_only_tls_and_the_services_are_told_so(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    options = FrontDoorOptions(tls="generated")
    lines: list[str] = []
    config = _config(
        tmp_path / "var", postgres_server, database_name, front_door=options, mqtt_plain=False
    )
    stack = Stack(config, [TOY], lines.append)
    try:
        status = stack.up()  # the bootstrap's logins went over TLS: nothing else listens
        assert status.up, status.lines()
        assert status.part("mosquitto").address == f"127.0.0.1:{config.port('mqtts')}"
        assert not port_is_open("127.0.0.1", config.port("broker"))
        ca = config.tls_dir / "ca.crt"
        env = config.stack_env.read_text()
        assert f"HEARTH_TOY_MQTT_PORT={config.port('mqtts')}\n" in env
        assert f"HEARTH_TOY_MQTT_CA_FILE={ca}\n" in env
        summary = "\n".join(lines)
        assert "mqtt://" not in summary
        assert "plain MQTT off" in summary
        # Control: the same stack with plain MQTT on tells services the plain port, no CA.
        stack.down()
        plain = Stack(dataclasses.replace(config, mqtt_plain=True), [TOY], lines.append)
        assert plain.up().up
        assert port_is_open("127.0.0.1", config.port("broker"))
        env = config.stack_env.read_text()
        assert f"HEARTH_TOY_MQTT_PORT={config.port('broker')}\n" in env
        assert "MQTT_CA_FILE" not in env
    finally:
        stack.down()


def test_a_killed_process_comes_back_alone_and_restart_restarts_it(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    stack = Stack(_config(tmp_path / "var", postgres_server, database_name), [TOY], lambda _: None)
    try:
        before = stack.up()
        toy, broker = before.part("toy").pid, before.part("mosquitto").pid
        assert toy is not None
        assert broker is not None
        os.kill(toy, signal.SIGKILL)

        def back() -> bool:
            part = stack.status().part("toy")
            return part.up and part.pid not in (None, toy)

        took = _wait(back, 10, "the killed toy came back")
        after = stack.status()
        assert after.part("toy").restarts == 1
        assert after.part("mosquitto").pid == broker  # the others were left alone
        assert after.part("mosquitto").restarts == 0
        print(f"toy came back in {took:.2f} s")

        restarted = stack.restart(["toy"]).part("toy")
        assert restarted.up
        assert restarted.pid not in (toy, after.part("toy").pid)
        assert restarted.restarts == 2
        with pytest.raises(StackError, match="no such process: nope"):
            stack.restart(["nope"])
    finally:
        stack.down()


def test_down_after_supervisord_was_killed_stops_its_orphans(
    tmp_path: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    stack = Stack(_config(tmp_path / "var", postgres_server, database_name), [], lambda _: None)
    try:
        stack.up()
        supervisor = read_record(stack.config.record_file("supervisord"))
        mosquitto = read_record(stack.config.record_file("mosquitto"))
        assert supervisor is not None
        assert mosquitto is not None
        os.kill(supervisor.pid, signal.SIGKILL)  # a crash: its processes live on
        assert wait_gone([supervisor], 5) == []
        assert mosquitto.running()
        status = stack.status()
        assert not status.part("supervisord").up
        assert status.part("mosquitto").state == "running (unsupervised)"
    finally:
        stack.down()
    assert not mosquitto.running()
    assert not port_is_open("127.0.0.1", stack.config.port("broker"))


@pytest.mark.slow
def test_a_broken_setting_ends_failed_without_spinning_and_up_recovers_after_the_fix(
    tmp_path: Path,
    postgres_server: PostgresServer,
    database_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_TOY_SETTING", "broken")
    lines: list[str] = []
    config = _config(tmp_path / "var", postgres_server, database_name)
    stack = Stack(config, [BROKEN_UNLESS_FIXED], lines.append)
    try:
        status = stack.up()
        assert not status.up
        toy = status.part("toy")
        assert toy.state == "failed"
        assert toy.detail == (
            f"gave up after {START_RETRIES + 1} tries in a row: it exited within its first "
            "seconds each time; the end of its log:"
        )
        assert any("HEARTH_TOY_SETTING=broken is not a valid setting" in t for t in toy.last_lines)
        table = "\n".join(status.lines())
        assert "failed" in table
        assert "HEARTH_TOY_SETTING=broken" in table
        assert any("toy FAILED: fix the cause shown above" in line for line in lines)
        assert status.part("mosquitto").up  # the others run on
        tries = StartHistory.read(config.starts_file("toy")).count
        assert tries == START_RETRIES + 1
        time.sleep(3)  # a bounded loop stays stopped: no further start
        assert StartHistory.read(config.starts_file("toy")).count == tries
        log = config.process_log("supervisord").read_text()
        assert "gave up: toy entered FATAL state" in log

        monkeypatch.delenv("HEARTH_TOY_SETTING")  # the operator fixes it, then `make up`
        lines.clear()
        repaired = stack.up()
        assert repaired.up, repaired.lines()
        assert repaired.part("toy").state in ("starting", "running")
        assert repaired.part("mosquitto").pid == status.part("mosquitto").pid
        assert any("starting toy again (it was failed)" in line for line in lines)
    finally:
        stack.down()
    assert list(config.run_dir.glob("*.json")) == []


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
    assert read_record(stack.config.record_file("supervisord")) is None
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


@pytest.mark.slow
def test_own_cluster_only_when_nothing_answers_then_remembered_and_switched_only_on_the_word(
    traversable_tmp: Path, postgres_server: PostgresServer, database_name: str
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    base = _config(
        traversable_tmp / "var",
        postgres_server,
        "hearth",
        postgres_mode="auto",
        postgres_url=dead,  # the default, as if nothing answered on 5432
        postgres_url_configured=False,
        own_postgres_port=free_port(),
    )
    lines: list[str] = []
    stack = Stack(base, [], lines.append)
    try:
        status = stack.up()
        assert status.part("database").up
        assert "our own cluster" in status.part("database").detail
        said = "\n".join(lines)
        assert "using the stack's own cluster in var/postgres (nothing configured and nothing " \
            "answers on the default URL" in said  # fmt: skip
        assert "remembered in" in said
    finally:
        stack.down()

    # The operator now points at a real server: refused, nothing switched, nothing started.
    asked = dataclasses.replace(
        base,
        postgres_url=postgres_server.url,
        postgres_url_configured=True,
        database_name=database_name,
    )
    with pytest.raises(StackError) as caught:
        Stack(asked, [], lambda _: None).up()
    message = str(caught.value)
    assert "this stack uses the stack's own cluster in var/postgres" in message
    assert "Nothing was switched" in message
    assert "HEARTH_POSTGRES_SWITCH=yes" in message
    assert read_record(base.record_file("supervisord")) is None
    assert read_record(base.record_file("postgres")) is None

    # With the explicit word it switches, says so, and remembers the new choice.
    lines.clear()
    switched = Stack(dataclasses.replace(asked, switch_database=True), [], lines.append)
    try:
        status = switched.up()
        assert "existing server" in status.part("database").detail
        said = "\n".join(lines)
        assert (
            "switching away from the stack's own cluster in var/postgres (its data stays)" in said
        )
        assert (base.postgres_dir / "data" / "PG_VERSION").is_file()  # the old data is kept
    finally:
        switched.down()
    again = Stack(dataclasses.replace(base, database_name=database_name), [], lambda _: None)
    try:  # nothing configured now: the remembered server, not the old cluster
        assert "existing server" in again.up().part("database").detail
    finally:
        again.down()
