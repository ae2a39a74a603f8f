"""End to end: the real ``hearth up``/``status``/``down`` commands on a fresh ``var/`` folder.

What issue 4 asks to show: from nothing, ``up``; ``status`` shows broker and database up;
the broker refuses an anonymous client and lets every service log in; ``down`` leaves no
process that ``up`` started (checked by pid, from the records ``up`` wrote, not by an exit
code); ``up`` again works. Issue 12: a device streams readings through a C publisher while
ingest, realtime and the broker are SIGKILLed in turn; each comes back alone and every
reading is stored exactly once; a service with a broken setting ends failed, and ``up``
starts it again once the setting is fixed. The stack runs on free ports in a temporary
folder, against the harness's PostgreSQL (127.0.0.1:5432 when it answers) with a database
of its own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from hearth.common.dynsec import create_device_commands
from hearth.common.logins import device_username, service_client_id, service_username
from hearth.platform.bootstrap import ensure_replica_logins
from hearth.platform.dynsec_control import DynsecControl
from hearth.platform.logins import ADMIN_USERNAME, PLATFORM_SERVICES
from hearth.platform.pids import ProcessRecord, read_record, wait_gone
from hearth.platform.postgres import asyncpg_dsn, server_answers
from hearth.platform.secrets import ADMIN_PASSWORD_KEY, mqtt_password_key, read_secrets
from hearth.platform.services import SERVICES
from hearth.platform.stack_config import DEFAULT_PORTS, port_env
from hearth.testing.broker import ConnectRefused, Login, connect_client
from hearth.testing.database import PostgresServer
from hearth.testing.devices import register_device
from hearth.testing.ports import free_port, port_is_open

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # a loaded box starts slowly

HOST = "127.0.0.1"


def _hearth() -> list[str]:
    script = Path(sys.executable).with_name("hearth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hearth.platform"]


class NativeStack:
    """Runs the ``hearth`` command against one ``var/`` folder with its own ports."""

    def __init__(self, var_dir: Path, server: PostgresServer, database: str) -> None:
        self.var_dir = var_dir
        self.database_url = server.database_url(database)
        self.ports = {name: free_port() for name in DEFAULT_PORTS}  # never the defaults
        self.broker_port = self.ports["broker"]
        self.env = {
            **os.environ,
            **{port_env(name): str(port) for name, port in self.ports.items()},
            "HEARTH_VAR_DIR": str(var_dir),
            "HEARTH_POSTGRES": "existing",
            "HEARTH_POSTGRES_URL": server.url,
            "HEARTH_DATABASE_NAME": database,
            "HEARTH_START_TIMEOUT": "180",  # a loaded CI box starts four Pythons slowly
        }
        self.env.pop("HEARTH_SECRETS_FILE", None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*_hearth(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=400,
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
        """Everything ``up`` started: the records under var/run (supervisord's among them)."""
        records = [read_record(p) for p in sorted((self.var_dir / "run").glob("*.json"))]
        found = [r for r in records if r is not None]
        assert "supervisord" in {r.name for r in found}, "up recorded no supervisord"
        return found

    def pid(self, name: str) -> int | None:
        """The pid of a supervised process, from its record, while it runs."""
        record = read_record(self.var_dir / "run" / f"{name}.json")
        return record.pid if record is not None and record.running() else None

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
    assert parts["supervisord"]["up"] is True
    for spec in SERVICES:  # every service that exists runs, on the port it was given
        assert parts[spec.name]["up"] is True
        assert parts[spec.name]["address"] == f"{HOST}:{stack.ports[spec.name]}"
    _assert_broker_works(stack)
    # The front door: every service on the web port, and the docs portal.
    assert parts["web"]["up"] is True
    assert parts["web"]["address"] == f"{HOST}:{stack.ports['web']}"
    web = f"http://{HOST}:{stack.ports['web']}"
    assert httpx.get(f"{web}/.well-known/jwks.json").json()["keys"]
    assert "swagger-ui-bundle.js" in httpx.get(f"{web}/docs/").text
    assert httpx.get(f"{web}/docs/openapi/registry.json").json()["openapi"].startswith("3.")

    started = stack.started()
    names = {r.name for r in started}
    assert {"supervisord", "mosquitto", "web", *(spec.name for spec in SERVICES)} <= names
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
    assert not port_is_open(HOST, stack.ports["web"])
    code, status = stack.status()
    assert code == 3
    assert _parts(status)["mosquitto"]["up"] is False
    assert _parts(status)["supervisord"]["up"] is False
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


# --------------------------------------------------------------------------- crashes

HOME, DEVICE, METRIC = "crash-home", "meter", "count"
COME_BACK = 10.0
"""Seconds a SIGKILLed process has to be running again, restarted by the supervisor alone."""
SERVING = 30.0
"""Seconds it then has to serve (a cold Python start: ~4 s on a quiet box, more when loaded)."""


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _stored(url: str) -> tuple[int, int]:
    """Rows of the test device, and distinct message ids among them."""

    async def count() -> tuple[int, int]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, count(DISTINCT msg_id) AS ids FROM ingest.telemetry "
                "WHERE home = $1 AND device = $2",
                HOME,
                DEVICE,
            )
            assert row is not None
            return int(row["n"]), int(row["ids"])
        finally:
            await conn.close()

    return asyncio.run(count())


def register_durably(stack: NativeStack) -> None:
    """Tell ingest about the test device as the registry would (its retained snapshot), and
    make the broker save it now: the test SIGKILLs the broker, which loses what it changed
    since its last save (docs/broker.md), and readings of a device ingest does not know are
    rejected."""
    values = read_secrets(stack.var_dir / "secrets.env")
    with DynsecControl(
        HOST, stack.broker_port, ADMIN_USERNAME, values[ADMIN_PASSWORD_KEY]
    ).connect() as dynsec:  # a registry login of the test's own (the live one stays connected)
        ensure_replica_logins(dynsec, values, {"registry": ["registrar"]})
    client = connect_client(HOST, stack.broker_port, stack.login("registry", "registrar"))
    try:
        register_device(client, HOME, DEVICE, [METRIC])
    finally:
        client.close()
    saved = stack.var_dir / "mosquitto" / "mosquitto.db"
    before = saved.stat().st_mtime_ns if saved.exists() else 0
    pid = stack.pid("mosquitto")
    assert pid is not None
    os.kill(pid, signal.SIGUSR1)  # Mosquitto saves its database on SIGUSR1
    _wait(lambda: saved.exists() and saved.stat().st_mtime_ns != before, 10, "the broker's save")


class Streamer:
    """``mosquitto_pub -l -q 1`` fed readings from a thread, its input kept open."""

    def __init__(self, stack: NativeStack, rate: float = 300.0) -> None:
        secrets_file = read_secrets(stack.var_dir / "secrets.env")
        username = device_username(HOME, DEVICE)
        password = secrets.token_urlsafe(18)
        with DynsecControl(
            HOST, stack.broker_port, ADMIN_USERNAME, secrets_file[ADMIN_PASSWORD_KEY]
        ).connect() as dynsec:
            dynsec.run(create_device_commands(HOME, DEVICE, password))
        register_durably(stack)
        self.proc = subprocess.Popen(
            [
                "mosquitto_pub", "-h", HOST, "-p", str(stack.broker_port), "-u", username,
                "-P", password, "-i", username, "-q", "1", "-l",
                "-t", f"hearth/{HOME}/{DEVICE}/telemetry/{METRIC}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.sent = 0
        self.rate = rate
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdin is not None
        started = time.monotonic()
        while not self._stop.is_set():
            if self.paused.is_set():
                started = time.monotonic() - self.sent / self.rate
                time.sleep(0.01)
                continue
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                line = json.dumps({"value": self.sent, "id": f"crash1-{self.sent}"})
                self.proc.stdin.write(line.encode() + b"\n")
                self.sent += 1
            self.proc.stdin.flush()
            time.sleep(0.01)

    def stop_sending(self) -> int:
        """Stop writing (the input stays open, so queued messages still go out)."""
        self._stop.set()
        self._thread.join(10)
        return self.sent

    def close(self) -> None:
        self._stop.set()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _device_connects(stack: NativeStack) -> int:
    """How often the device connected, from the broker's log."""
    log = (stack.var_dir / "log" / "mosquitto.log").read_text(errors="replace")
    return log.count(f"as {device_username(HOME, DEVICE)} ")


def _serving(stack: NativeStack, name: str) -> bool:
    if name == "mosquitto":
        return port_is_open(HOST, stack.broker_port)
    return _http_ok(stack.ports[name], "/healthz")


def test_each_process_comes_back_alone_and_every_reading_is_stored_once(
    stack: NativeStack,
) -> None:
    stack.run("up")
    names = ["mosquitto", *(spec.name for spec in SERVICES)]
    _wait(lambda: _http_ok(stack.ports["ingest"], "/readyz"), 30, "ingest ready")
    # Ready also means the registry reconciled the broker's device logins at start: the
    # streamer's own login (not the registry's) is made after that and stays.
    _wait(lambda: _http_ok(stack.ports["registry"], "/readyz"), 30, "registry ready")
    streamer = Streamer(stack)
    try:
        _wait(lambda: _stored(stack.database_url)[0] > 100, 30, "the first readings stored")
        for victim in ("ingest", "realtime", "mosquitto"):
            if victim == "mosquitto":
                # A SIGKILLed broker loses what it held only in memory, ingest's uncommitted
                # batch included (the autosave window, docs/broker.md). That is the broker's
                # persistence, not the supervisor: the device pauses until ingest has stored
                # everything, and streams on once it is connected to the restarted broker.
                streamer.paused.set()
                target = streamer.sent
                _wait(lambda t=target: _stored(stack.database_url)[0] >= t, 120, "ingest caught up")
            before = {name: stack.pid(name) for name in names}
            assert all(before.values()), before
            connects = _device_connects(stack)
            os.kill(before[victim], signal.SIGKILL)  # type: ignore[arg-type]

            def respawned(victim: str = victim, old: int | None = before[victim]) -> bool:
                return stack.pid(victim) not in (None, old)

            took = _wait(respawned, COME_BACK, f"{victim} started again by the supervisor")
            took += _wait(lambda v=victim: _serving(stack, v), SERVING, f"{victim} serving")
            print(f"{victim}: SIGKILLed, started again and serving after {took:.2f} s")
            if streamer.paused.is_set():  # mosquitto_pub drops lines read while disconnected
                _wait(lambda c=connects: _device_connects(stack) > c, 30, "the device reconnected")
                streamer.paused.clear()
            for name in names:
                if name != victim:
                    assert stack.pid(name) == before[name], f"{name} was restarted too"
                    assert _serving(stack, name), f"{name} stopped serving"
            for service in ("ingest", "realtime"):
                _wait(lambda s=service: _http_ok(stack.ports[s], "/readyz"), 60, f"{service} ready")
        sent = streamer.stop_sending()
        try:
            _wait(lambda: _stored(stack.database_url)[0] >= sent, 120, "every reading stored")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: sent {sent}, stored {_stored(stack.database_url)}"
            ) from None
        time.sleep(1.0)  # a late duplicate would show up now
        rows, ids = _stored(stack.database_url)
        print(f"sent {sent} readings, stored {rows} rows with {ids} distinct ids")
        assert (rows, ids) == (sent, sent)
        code, status = stack.status()
        parts = _parts(status)
        assert code == 0, status
        for victim in ("ingest", "realtime", "mosquitto"):
            assert parts[victim]["restarts"] == 1
        assert parts["auth"]["restarts"] == 0
        assert parts["registry"]["restarts"] == 0
    finally:
        streamer.close()


def test_a_service_with_a_broken_setting_ends_failed_and_up_starts_it_after_the_fix(
    stack: NativeStack,
) -> None:
    # realtime has no migrate step, so only the running service meets the setting (a broken
    # setting of a service with migrations stops `up` at its migration, before anything runs)
    stack.env["HEARTH_REALTIME_MAX_ROOMS_PER_SOCKET"] = "0"  # must be >= 1
    first = stack.run("up", check=False)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "The Hearth stack is NOT fully up" in first.stdout
    assert "realtime FAILED: fix the cause shown above" in first.stdout
    code, status = stack.status()
    parts = _parts(status)
    assert code == 3
    realtime = parts["realtime"]
    assert realtime["state"] == "failed"
    assert realtime["detail"].startswith("gave up after 5 tries in a row")
    assert any("max_rooms_per_socket" in line for line in realtime["last_lines"]), realtime
    assert realtime["restarts"] == 4  # five starts, then no more: it does not spin
    for name in ("mosquitto", "auth", "registry", "ingest"):
        assert parts[name]["up"] is True, name  # the others run on
    human = stack.run("status", check=False).stdout
    assert "failed" in human
    assert "max_rooms_per_socket" in human

    del stack.env["HEARTH_REALTIME_MAX_ROOMS_PER_SOCKET"]  # the operator fixes it
    second = stack.run("up")
    assert "starting realtime again (it was failed)" in second.stdout
    code, status = stack.status()
    assert code == 0, status
    assert _parts(status)["realtime"]["state"] in ("starting", "running")
    assert _parts(status)["auth"]["pid"] == parts["auth"]["pid"]  # nothing else restarted


@pytest.mark.slow
def test_plain_mqtt_off_the_platform_works_over_tls_only(stack: NativeStack) -> None:
    """``HEARTH_TLS=generated HEARTH_MQTT_PLAIN=off``: nothing plain on the broker port, the
    services reach the broker over TLS, and a device set up from the config download (TLS
    port, CA) publishes a reading that ingest stores, all through the HTTPS front door."""
    import socket
    import ssl

    stack.env.update(HEARTH_TLS="generated", HEARTH_MQTT_PLAIN="off")
    stack.run("up")
    for spec in SERVICES:
        _wait_ready(stack.ports[spec.name])  # each one's broker check passed, over TLS
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, stack.broker_port), timeout=5).close()
    ca = stack.var_dir / "tls" / "ca.crt"
    web = f"https://{HOST}:{stack.ports['web']}"
    password = read_secrets(stack.var_dir / "secrets.env")["HEARTH_AUTH_ADMIN_PASSWORD"]
    with httpx.Client(base_url=web, verify=ssl.create_default_context(cafile=str(ca))) as http:
        token = http.post("/auth/token", data={"username": "admin", "password": password}).json()[
            "access_token"
        ]
        http.headers["Authorization"] = f"Bearer {token}"
        home = f"tls-{secrets.token_hex(3)}"
        assert http.post("/registry/homes", json={"slug": home, "name": "TLS"}).status_code == 201
        devices = f"/registry/homes/{home}/devices"
        created = http.post(
            devices, json={"slug": "th", "name": "TH", "type": "temperature-humidity"}
        )
        assert created.status_code == 201, created.text  # its login made over TLS
        config = http.get(f"{devices}/th/config").json()
        assert (config["broker_port"], config["broker_tls"]) == (stack.ports["mqtts"], True)
        assert config["broker_ca"] == ca.read_text()
        ca_file = stack.var_dir / "device-ca.pem"
        ca_file.write_text(config["broker_ca"])
        login = Login(config["username"], config["password"], config["client_id"])
        device = connect_client(HOST, config["broker_port"], login, ca_file=ca_file)
        device.publish_and_wait(config["telemetry_topics"]["temperature"], b"22.25", qos=1)
        device.close()

        def stored() -> bool:
            latest = http.get(f"/telemetry/homes/{home}/latest")
            return latest.status_code == 200 and any(
                value["value"] == 22.25 for value in latest.json()["values"]
            )

        _wait(stored, 30.0, "ingest stored the reading (its broker session is TLS)")
