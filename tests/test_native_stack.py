"""End to end: the real ``hearth up``/``status``/``down`` commands on a fresh ``var/`` folder.

What issue 4 asks to show: from nothing, ``up``; ``status`` shows broker and database up;
the broker refuses an anonymous client and lets every service log in; ``down`` leaves no
process that ``up`` started (checked by pid, from the records ``up`` wrote and honcho's
process tree, not by an exit code); ``up`` again works. The stack runs on free ports in a
temporary folder, against the harness's PostgreSQL (127.0.0.1:5432 when it answers) with a
database of its own, dropped at the end.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.common.logins import service_client_id, service_username
from hearth.platform.logins import PLATFORM_SERVICES
from hearth.platform.pids import ProcessRecord, descendants, read_record, wait_gone
from hearth.platform.postgres import server_answers
from hearth.platform.secrets import mqtt_password_key, read_secrets
from hearth.platform.services import SERVICES
from hearth.platform.stack_config import DEFAULT_PORTS, port_env
from hearth.testing.broker import ConnectRefused, Login, connect_client
from hearth.testing.database import PostgresServer
from hearth.testing.ports import free_port, port_is_open

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


def _hearth() -> list[str]:
    script = Path(sys.executable).with_name("hearth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hearth.platform"]


class NativeStack:
    """Runs the ``hearth`` command against one ``var/`` folder with its own ports."""

    def __init__(self, var_dir: Path, server: PostgresServer, database: str) -> None:
        self.var_dir = var_dir
        self.ports = {name: free_port() for name in DEFAULT_PORTS}  # never the defaults
        self.broker_port = self.ports["broker"]
        self.env = {
            **os.environ,
            **{port_env(name): str(port) for name, port in self.ports.items()},
            "HEARTH_VAR_DIR": str(var_dir),
            "HEARTH_POSTGRES": "existing",
            "HEARTH_POSTGRES_URL": server.url,
            "HEARTH_DATABASE_NAME": database,
        }
        self.env.pop("HEARTH_SECRETS_FILE", None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*_hearth(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if check:
            assert result.returncode == 0, (
                f"hearth {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def status(self) -> tuple[int, dict[str, Any]]:
        result = self.run("status", "--json", check=False)
        return result.returncode, json.loads(result.stdout)

    def started(self) -> list[ProcessRecord]:
        """Everything ``up`` started: the records under var/run and honcho's process tree."""
        records = [read_record(p) for p in sorted((self.var_dir / "run").glob("*.json"))]
        found = [r for r in records if r is not None]
        honcho = read_record(self.var_dir / "run" / "honcho.json")
        assert honcho is not None, "up recorded no honcho"
        return [*found, *descendants(honcho)]

    def login(self, service: str, replica: str) -> Login:
        values = read_secrets(self.var_dir / "secrets.env")
        return Login(
            service_username(service, replica),
            values[mqtt_password_key(service)],
            client_id=service_client_id(service, replica),
        )


@pytest.fixture
def stack(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[NativeStack]:
    database = f"hearth_test_native_{secrets.token_hex(4)}"
    native = NativeStack(tmp_path / "var", postgres_server, database)
    try:
        yield native
    finally:
        native.run("down", check=False)
        postgres_server.drop_database(database)


def _parts(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {part["name"]: part for part in status["parts"]}


def _assert_broker_works(stack: NativeStack) -> None:
    with pytest.raises(ConnectRefused):
        connect_client(HOST, stack.broker_port, None)  # anonymous
    with pytest.raises(ConnectRefused):
        connect_client(HOST, stack.broker_port, Login("svc-auth-0", "not-the-password", "auth-0"))
    for service in PLATFORM_SERVICES:
        # Replica 0 runs (logging in as it would take its session over): its login is bound.
        with pytest.raises(ConnectRefused):
            connect_client(
                HOST, stack.broker_port, stack.login(service, "0"), client_id=f"{service}-e2e"
            )
    for spec in SERVICES:  # every replica 0 is logged in with its own login (ready)
        _wait_ready(stack.ports[spec.name])


def _wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"http://{HOST}:{port}/readyz", timeout=2.0)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if response.status_code == 200:
                return
            last = response.text
        time.sleep(0.1)
    raise AssertionError(f"port {port} not ready within {timeout:g} s: {last}")


def test_up_status_down_up_again(stack: NativeStack, postgres_server: PostgresServer) -> None:
    first = stack.run("up")
    assert "The Hearth stack is up" in first.stdout
    assert str(stack.var_dir / "secrets.env") in first.stdout
    assert "make down" in first.stdout
    assert f"127.0.0.1:{stack.broker_port}" in first.stdout

    code, status = stack.status()
    parts = _parts(status)
    assert code == 0
    assert status["up"] is True
    assert parts["mosquitto"]["up"] is True
    assert parts["mosquitto"]["address"] == f"{HOST}:{stack.broker_port}"
    assert parts["database"]["up"] is True
    assert parts["honcho"]["up"] is True
    for spec in SERVICES:  # every service that exists runs, on the port it was given
        assert parts[spec.name]["up"] is True
        assert parts[spec.name]["address"] == f"{HOST}:{stack.ports[spec.name]}"
    _assert_broker_works(stack)

    started = stack.started()
    names = {r.name for r in started}
    assert {"honcho", "mosquitto", *(spec.name for spec in SERVICES)} <= names
    assert parts["mosquitto"]["pid"] in {r.pid for r in started}
    assert all(r.running() for r in started)

    stack.env["HEARTH_INGEST_REPLICAS"] = "2"  # a replica is added: up gives it a login
    again = stack.run("up")
    assert "already up" in again.stdout
    assert "created login svc-ingest-1" in again.stdout
    connect_client(HOST, stack.broker_port, stack.login("ingest", "1")).close()

    stack.run("down")
    assert wait_gone(started, 0.5) == [], "down left processes that up started"
    assert not port_is_open(HOST, stack.broker_port)
    code, status = stack.status()
    assert code == 3
    assert _parts(status)["mosquitto"]["up"] is False
    assert _parts(status)["honcho"]["up"] is False
    assert server_answers(postgres_server.url), "down must never stop a server it did not start"

    second = stack.run("up")  # the broker's state and logins from the first run are reused
    assert "The Hearth stack is up" in second.stdout
    assert "created login" not in second.stdout
    assert stack.status()[0] == 0
    _assert_broker_works(stack)
    restarted = stack.started()
    assert {(r.pid, r.start_time) for r in restarted}.isdisjoint(
        {(r.pid, r.start_time) for r in started}
    )

    stack.run("down")
    assert wait_gone(restarted, 0.5) == []
    assert list((stack.var_dir / "run").glob("*.json")) == []
    assert "nothing to stop" in stack.run("down").stdout
