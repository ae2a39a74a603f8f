"""Device logins at the real broker, provisioned through the registry's API.

A broker of this module's own (the registry reconciles it, so no other test's device logins
may live there), auth and the registry on fresh databases, and an ingest replica. Every
denial is followed by an allowed message sent after it that must arrive (a positive
control), so a broker that drops everything, or a monitor that hears nothing, cannot pass.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from hearth.common.topics import command_topic, status_topic, telemetry_topic
from hearth.common.web import service_state
from hearth.platform.cli import main as hearth_cli
from hearth.registry.config import RegistrySettings
from hearth.registry.main import create_app as create_registry_app
from hearth.registry.state import RegistryState
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import (
    ConnectRefused,
    Login,
    MqttTestClient,
    RunningBroker,
    connect_client,
)
from hearth.testing.database import PostgresServer, fetch, run_async
from hearth.testing.services import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ServiceStack,
    User,
    running_ingest,
    running_stack,
)

NOT_AUTHORIZED = 0x87
WAIT = 10.0


@dataclass
class World:
    """This module's broker, auth + registry, ingest and its database, one owner."""

    broker: RunningBroker
    stack: ServiceStack
    ingest: RunningApp
    ingest_db: str
    owner: User
    home: str

    def device(self, slug: str, **fields: Any) -> dict[str, Any]:
        """The owner adds a device; the registry's 201 answer (credentials included)."""
        body = {"slug": slug, "name": slug.title(), **fields}
        response = self.stack.http.post(
            f"/registry/homes/{self.home}/devices", json=body, headers=self.owner.headers
        )
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        answer: dict[str, Any] = response.json()
        return answer

    def url(self, device: str, tail: str = "") -> str:
        return f"/registry/homes/{self.home}/devices/{device}{tail}"

    def connect(self, login: Login, **options: Any) -> MqttTestClient:
        return connect_client(self.broker.host, self.broker.port, login, **options)

    def monitor(self) -> MqttTestClient:
        """The broker admin (reads ``#``) subscribed to the whole home."""
        return self.broker.monitor(f"hearth/{self.home}/#")

    def commander(self) -> MqttTestClient:
        """A registry replica's login: the platform side that sends commands."""
        return self.broker.service_client("registry")


def login_of(answer: dict[str, Any]) -> Login:
    credentials = answer["credentials"]
    return Login(credentials["username"], credentials["password"], credentials["client_id"])


def accepted(reason: ReasonCode | None) -> bool:
    """An MQTT 5 PUBACK that took the message (0x10 "no matching subscribers" included)."""
    return reason is not None and reason.value < 0x80


def denied(reason: ReasonCode | None) -> bool:
    """An MQTT 5 PUBACK refusing the message as not authorised."""
    return reason is not None and reason.value == NOT_AUTHORIZED


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def refused(broker: RunningBroker, login: Login, **options: Any) -> int:
    """The CONNACK reason code of a refused connection (fails if it was accepted)."""
    with pytest.raises(ConnectRefused) as refusal:
        connect_client(broker.host, broker.port, login, **options).close()
    return int(refusal.value.reason.value)


@pytest.fixture(scope="module")
def world(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    broker = RunningBroker.launch(tmp_path_factory.mktemp("device-broker"))
    folder = tmp_path_factory.mktemp("device-stack")
    try:
        with (
            running_stack(postgres_server, broker, folder, reconcile_at_start=True) as stack,
            running_ingest(postgres_server, broker, stack, folder) as ingest,
        ):
            owner = stack.create_user("owner")
            home = stack.create_home(owner)["slug"]
            yield World(broker, stack, ingest.app, ingest.database_url, owner, home)
    finally:
        broker.kill()


# --------------------------------------------------------------------------- provisioning


def test_a_provisioned_device_logs_in_and_its_telemetry_is_stored(world: World) -> None:
    answer = world.device("kitchen-th", type="temperature-humidity")
    username = f"dev.{world.home}.kitchen-th"
    assert answer["credentials"]["username"] == answer["credentials"]["client_id"] == username
    assert len(answer["credentials"]["password"]) >= 40
    read = world.stack.http.get(world.url("kitchen-th"), headers=world.owner.headers).json()
    assert "credentials" not in read  # shown once

    device = world.connect(login_of(answer), protocol=4)  # MQTT 3.1.1, as simple firmware
    topic = telemetry_topic(world.home, "kitchen-th", "temperature")
    device.publish_and_wait(topic, b'{"value": 21.5, "id": "boot1-1"}', qos=1, retain=True)

    def stored() -> list[tuple[str, float, str | None]]:
        rows = run_async(
            fetch(
                world.ingest_db,
                "SELECT device, value, msg_id FROM ingest.telemetry WHERE home = $1",
                world.home,
            )
        )
        return [(r["device"], r["value"], r["msg_id"]) for r in rows]

    wait_until(lambda: bool(stored()), "the reading stored by ingest")
    assert stored() == [("kitchen-th", 21.5, "boot1-1")]
    device.close()


def test_a_device_reaches_only_its_own_topics(world: World) -> None:
    lamp = world.device("lamp", type="light")
    heater = world.device("heater", type="thermostat")
    monitor = world.monitor()
    victim = world.connect(login_of(heater), protocol=4)
    attacker = world.connect(login_of(lamp))  # MQTT 5: refusals carry reason codes
    own = telemetry_topic(world.home, "lamp", "power")

    # 1. Publishing to another device's topic: dropped. Control: its own, sent after.
    theirs = telemetry_topic(world.home, "heater", "temperature")
    assert denied(attacker.publish_and_wait(theirs, b"99"))
    assert accepted(attacker.publish_and_wait(own, b"1"))
    monitor.wait_for_messages(1, own)
    assert monitor.received(theirs) == []

    # 2. Subscribing to everything or to another device's commands: refused.
    # Control: its own commands, subscribed after, do arrive.
    (everything,) = attacker.subscribe_and_wait("#")
    (foreign,) = attacker.subscribe_and_wait(f"hearth/{world.home}/heater/command/+")
    (mine,) = attacker.subscribe_and_wait(f"hearth/{world.home}/lamp/command/+")
    assert (everything.value, foreign.value) == (NOT_AUTHORIZED, NOT_AUTHORIZED)
    assert mine.value == 1
    admin = world.commander()  # commands to both devices, the lamp's last
    for device, prop, value in (("heater", "target", b"30"), ("lamp", "power", b"true")):
        assert accepted(admin.publish_and_wait(command_topic(world.home, device, prop), value))
    attacker.wait_for_messages(1, command_topic(world.home, "lamp", "power"))
    assert [m.topic for m in attacker.received()] == [command_topic(world.home, "lamp", "power")]

    # 3. Connecting under another device's client id: refused; that device stays connected.
    assert (
        refused(world.broker, login_of(lamp), client_id=f"dev.{world.home}.heater")
        == NOT_AUTHORIZED
    )
    victim_topic = telemetry_topic(world.home, "heater", "temperature")
    victim.publish_and_wait(victim_topic, b"21")
    monitor.wait_for_messages(1, victim_topic)
    assert victim.disconnects == 0
    assert victim.is_connected()
    for client in (monitor, admin, victim, attacker):
        client.close()


# --------------------------------------------------------------------------- rotate, disable


def test_rotation_takes_effect_at_once(world: World) -> None:
    answer = world.device("rotated")
    old = login_of(answer)
    device = world.connect(old, protocol=4)
    response = world.stack.http.post(
        world.url("rotated", "/credentials"), headers=world.owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    new = login_of(response.json())
    assert (new.username, new.client_id) == (old.username, old.client_id)
    assert new.password != old.password
    device.wait_for(lambda: device.disconnects >= 1, WAIT)  # kicked at once
    device.close()
    assert refused(world.broker, old) == NOT_AUTHORIZED
    monitor = world.monitor()
    again = world.connect(new, protocol=4)  # control: the new password works
    again.publish_and_wait(status_topic(world.home, "rotated"), b"online", retain=True)
    monitor.wait_for_messages(1, status_topic(world.home, "rotated"))
    for client in (monitor, again):
        client.close()


def test_disable_refuses_and_kicks_enable_lets_in_again(world: World) -> None:
    login = login_of(world.device("switched"))
    device = world.connect(login, protocol=4)

    def patch(disabled: bool) -> dict[str, Any]:
        response = world.stack.http.patch(
            world.url("switched"), json={"disabled": disabled}, headers=world.owner.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert patch(True)["disabled"] is True
    device.wait_for(lambda: device.disconnects >= 1, WAIT)
    device.close()
    assert refused(world.broker, login) == NOT_AUTHORIZED
    assert patch(False)["disabled"] is False
    world.connect(login).close()  # control: the same password logs in again


def test_delete_removes_the_login_and_kicks_the_device(world: World) -> None:
    login = login_of(world.device("doomed"))
    device = world.connect(login, protocol=4)  # control: it logged in before the delete
    response = world.stack.http.delete(world.url("doomed"), headers=world.owner.headers)
    assert response.status_code == 204, response.text
    device.wait_for(lambda: device.disconnects >= 1, WAIT)
    device.close()
    assert refused(world.broker, login) == NOT_AUTHORIZED
    with world.broker.control() as dynsec:
        names = dynsec.call("listClients")["clients"]
    assert login.username not in names


# --------------------------------------------------------------------------- gateways


def test_a_gateway_relays_only_for_the_devices_that_name_it(world: World) -> None:
    hub = login_of(world.device("hub"))
    world.device("sensor-a", gateway="hub")
    world.device("sensor-b")
    monitor = world.monitor()
    gateway = world.connect(hub)
    relayed = telemetry_topic(world.home, "sensor-a", "temperature")
    other = telemetry_topic(world.home, "sensor-b", "temperature")
    assert denied(gateway.publish_and_wait(other, b"1"))
    assert accepted(gateway.publish_and_wait(relayed, b"2"))
    monitor.wait_for_messages(1, relayed)
    assert monitor.received(other) == []

    # sensor-b moves behind the hub, sensor-a leaves it: the hub's role follows at once.
    for slug, through in (("sensor-b", "hub"), ("sensor-a", None)):
        response = world.stack.http.patch(
            world.url(slug), json={"gateway": through}, headers=world.owner.headers
        )
        assert response.status_code == 200, response.text
    monitor.clear()
    assert denied(gateway.publish_and_wait(relayed, b"3"))
    assert accepted(gateway.publish_and_wait(other, b"4"))
    monitor.wait_for_messages(1, other)
    assert monitor.received(relayed) == []
    for client in (monitor, gateway):
        client.close()


# --------------------------------------------------------------------------- reconcile


def test_reconcile_rebuilds_device_logins_after_a_broker_reset(
    postgres_server: PostgresServer,
    fresh_broker: RunningBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = fresh_broker
    caplog.set_level(logging.INFO, logger="hearth.registry.device_logins")  # its summary line

    def connect(login: Login) -> MqttTestClient:
        return connect_client(broker.host, broker.port, login)

    with running_stack(postgres_server, broker, tmp_path, reconcile_at_start=True) as stack:
        owner = stack.create_user("owner")
        home = stack.create_home(owner)["slug"]

        def add(slug: str, **fields: Any) -> Login:
            response = stack.http.post(
                f"/registry/homes/{home}/devices",
                json={"slug": slug, "name": slug, **fields},
                headers=owner.headers,
            )
            assert response.status_code == 201, response.text
            return login_of(response.json())

        logins = [add("hub"), add("one", gateway="hub"), add("two")]
        disabled = add("off")
        response = stack.http.patch(
            f"/registry/homes/{home}/devices/off", json={"disabled": True}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        stranger = broker.create_device_login(home, "stranger")  # not the registry's

        # The broker loses its dynsec file; the bootstrap rebuilds the platform's logins.
        broker.stop()
        broker.dynsec_file.unlink()
        broker.bootstrap()
        for login in logins:
            assert refused(broker, login) == NOT_AUTHORIZED  # control: all gone
        wait_until(
            lambda: stack.http.get("/readyz").json()["checks"]["broker"]["ok"],
            "the registry reconnected",
            timeout=30,
        )
        forbidden = stack.http.post("/registry/reconcile", headers=owner.headers)
        assert forbidden.status_code == 403  # platform admins only
        response = stack.http.post("/registry/reconcile", headers=stack.admin.headers)
        assert response.status_code == 200, response.text
        report = response.json()
        assert sorted(report["created"]) == sorted(
            [*(login.username for login in logins), disabled.username]
        )
        assert report["deleted"] == []  # the stranger went with the old file

        for login in logins:  # every device logs in again with its old password
            connect(login).close()
        assert refused(broker, disabled) == NOT_AUTHORIZED  # still disabled
        hub = connect(logins[0])
        relayed = telemetry_topic(home, "one", "t")
        assert accepted(hub.publish_and_wait(relayed, b"1"))
        hub.close()

        # A login the registry does not know is removed; platform logins are left alone.
        stranger = broker.create_device_login(home, "stranger")
        connect(stranger).close()  # control: it worked before
        # ... by `hearth reconcile`, which asks the registry as the platform's first admin.
        secrets_file = tmp_path / "secrets.env"
        secrets_file.write_text(
            f"HEARTH_AUTH_ADMIN_USERNAME={ADMIN_USERNAME}\n"
            f"HEARTH_AUTH_ADMIN_PASSWORD={ADMIN_PASSWORD}\n"
        )
        code = hearth_cli(
            [
                "reconcile",
                "--secrets-file",
                str(secrets_file),
                "--auth-url",
                stack.auth.url,
                "--registry-url",
                stack.registry.url,
            ]
        )
        assert code == 0
        printed = capsys.readouterr().out
        assert f"reconcile: deleted {stranger.username}" in printed
        assert f"reconcile: {len(logins) + 1} device login(s) already right" in printed
        assert "reconcile: created" not in printed
        assert ADMIN_PASSWORD not in printed
        assert refused(broker, stranger) == NOT_AUTHORIZED
        summaries = [r for r in caplog.records if r.getMessage() == "device logins reconciled"]
        assert [getattr(r, "logins_deleted", None) for r in summaries][-1] == 1
        connect(broker.service_login("ingest", "0")).close()  # platform logins untouched


# --------------------------------------------------------------------------- config download

ODD_NAME = 'Kitchen "TH" \\ 21°C ??= $HOME `x`'
"""A device name that would break a naive file in every format (quotes, backslash, a C
trigraph, shell expansions, non-ASCII)."""


def download(world: World, device: str, fmt: str) -> str:
    response = world.stack.http.get(
        world.url(device, "/config"), params={"format": fmt}, headers=world.owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return response.text


def test_the_config_download_holds_everything_the_firmware_needs(world: World) -> None:
    created = world.device("cfg", type="temperature-humidity", name=ODD_NAME)
    response = world.stack.http.get(world.url("cfg", "/config"), headers=world.owner.headers)
    assert response.headers["content-type"] == "application/json"
    config = response.json()
    assert config["password"] == created["credentials"]["password"]
    assert config["username"] == config["client_id"] == f"dev.{world.home}.cfg"
    assert (config["broker_host"], config["broker_port"], config["broker_tls"]) == (
        world.broker.host,
        world.broker.port,
        False,
    )
    assert "broker_ca" not in config  # no TLS, no CA (tests/.../test_mqtt_tls_only.py: with)
    assert config["name"] == ODD_NAME
    assert config["interval"] == 60
    assert config["command_filter"] == f"hearth/{world.home}/cfg/command/+"
    assert config["telemetry_topics"] == {
        "temperature": f"hearth/{world.home}/cfg/telemetry/temperature",
        "humidity": f"hearth/{world.home}/cfg/telemetry/humidity",
    }
    assert [m["name"] for m in config["metrics"]] == ["temperature", "humidity"]

    # The download is enough to log in and publish (what a board does with it).
    login = Login(config["username"], config["password"], config["client_id"])
    monitor = world.monitor()
    device = connect_client(config["broker_host"], config["broker_port"], login)
    assert accepted(device.publish_and_wait(config["telemetry_topics"]["humidity"], b"40"))
    monitor.wait_for_messages(1, config["telemetry_topics"]["humidity"])
    for client in (monitor, device):
        client.close()

    # A rotation changes the download; others may not have it; a bad format is a 422.
    rotated = world.stack.http.post(world.url("cfg", "/credentials"), headers=world.owner.headers)
    new_password = rotated.json()["credentials"]["password"]
    assert '"password": "' + new_password + '"' in download(world, "cfg", "json")
    assert world.stack.http.get(world.url("cfg", "/config")).status_code == 401
    bad = world.stack.http.get(
        world.url("cfg", "/config"), params={"format": "yaml"}, headers=world.owner.headers
    )
    assert bad.status_code == 422


def test_each_format_reads_back_to_the_same_values(world: World, tmp_path: Path) -> None:
    world.device("fmt", type="light", name=ODD_NAME)
    config = json.loads(download(world, "fmt", "json"))
    expected = {
        "HEARTH_NAME": ODD_NAME,
        "HEARTH_PASSWORD": config["password"],
        "HEARTH_CLIENT_ID": config["client_id"],
        "HEARTH_BROKER_PORT": str(config["broker_port"]),
        "HEARTH_STATE_PREFIX": f"hearth/{world.home}/fmt/state/",
        "HEARTH_PROPERTIES": "power,brightness",
    }

    # env: sourced by a POSIX shell (and so by a dotenv reader), every value literal.
    (tmp_path / "hearth.env").write_text(download(world, "fmt", "env"))
    script = ". ./hearth.env && " + " && ".join(f'printf "%s\\n" "${key}"' for key in expected)
    shell = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert shell.stdout.splitlines() == list(expected.values())

    # micropython: a module of plain literals.
    module: dict[str, Any] = {}
    exec(compile(download(world, "fmt", "micropython"), "config.py", "exec"), module)  # noqa: S102
    assert module["PASSWORD"] == config["password"]
    assert module["NAME"] == ODD_NAME
    assert module["STATE_TOPICS"] == config["state_topics"]
    assert module["PROPERTIES"] == config["properties"]
    assert module["BROKER_TLS"] is False
    assert "BROKER_CA" not in module  # without TLS (firmware: getattr(config, "BROKER_CA"))

    # arduino: a header of C string and number macros, compiled and run here.
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to check the arduino header with")
    (tmp_path / "hearth_config.h").write_text(download(world, "fmt", "arduino"))
    macros = [key for key in expected if key != "HEARTH_BROKER_PORT"]
    prints = "".join(f"puts({key});" for key in macros)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "hearth_config.h"\n'
        f'int main(void) {{ {prints} printf("%d\\n", HEARTH_BROKER_PORT); return 0; }}\n'
    )
    subprocess.run(
        [compiler, "-std=c99", "-Wall", "-Werror", "-Wtrigraphs", "main.c", "-o", "main"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    ran = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, check=True)
    lines = ran.stdout.decode("utf-8").splitlines()
    assert lines == [*(expected[key] for key in macros), expected["HEARTH_BROKER_PORT"]]


def test_a_device_the_broker_did_not_take_is_not_created(
    postgres_server: PostgresServer, fresh_broker: RunningBroker, tmp_path: Path
) -> None:
    broker = fresh_broker
    with running_stack(
        postgres_server, broker, tmp_path, reconcile_at_start=True, dynsec_timeout=1.0
    ) as stack:
        owner = stack.create_user("owner")
        home = stack.create_home(owner)["slug"]
        devices = f"/registry/homes/{home}/devices"
        broker.stop()
        response = stack.http.post(
            devices, json={"slug": "lamp", "name": "Lamp"}, headers=owner.headers
        )
        assert (response.status_code, response.json()["code"]) == (503, "broker_unavailable")
        assert stack.http.get(f"{devices}/lamp", headers=owner.headers).status_code == 404
        broker.start()
        wait_until(
            lambda: stack.http.get("/readyz").status_code == 200,
            "the registry reconnected",
            timeout=30,
        )
        # Control: with the broker back, the same request creates the device and its login.
        response = stack.http.post(
            devices, json={"slug": "lamp", "name": "Lamp"}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        connect_client(broker.host, broker.port, login_of(response.json())).close()


# --------------------------------------------------------------------------- docs/devices.md

DEVICES_MD = Path(__file__).resolve().parents[3] / "docs" / "devices.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z_]+) -->\n```[a-z]+\n(.*?)```", re.DOTALL)


def test_the_snippets_in_devices_md(world: World, tmp_path: Path) -> None:
    snippets = dict(SNIPPET.findall(DEVICES_MD.read_text(encoding="utf-8")))
    assert set(snippets) == {"mosquitto_pub", "paho", "micropython", "arduino"}
    world.device("snippet", type="temperature-humidity")
    files = {
        "env": "hearth.env",
        "json": "hearth.json",
        "micropython": "config.py",
        "arduino": "hearth_config.h",
    }
    for fmt, name in files.items():
        (tmp_path / name).write_text(download(world, "snippet", fmt), encoding="utf-8")
    status = status_topic(world.home, "snippet")
    reading = telemetry_topic(world.home, "snippet", "temperature")
    monitor = world.monitor()

    # The two that run here, against the real broker: each one's birth and reading arrive.
    for command in (
        ["sh", "-c", snippets["mosquitto_pub"]],
        [sys.executable, "-c", snippets["paho"]],
    ):
        monitor.clear()
        subprocess.run(command, cwd=tmp_path, check=True, timeout=30, capture_output=True)
        monitor.wait_for_messages(1, reading)
        assert monitor.payloads(reading) == [b"21.5"]
        assert json.loads(monitor.payloads(status)[0]) == {
            "state": "online",
            "reason": "connected",
        }
    monitor.close()

    # MicroPython: valid Python, using only names config.py defines.
    compile(snippets["micropython"], "main.py", "exec")
    module: dict[str, Any] = {}
    exec((tmp_path / "config.py").read_text(encoding="utf-8"), module)  # noqa: S102
    used = set(re.findall(r"config\.([A-Z_]+)", snippets["micropython"]))
    assert used
    assert used <= set(module)
    assert "temperature" in module["TELEMETRY_TOPICS"]

    # Arduino: only macros hearth_config.h defines.
    header = (tmp_path / "hearth_config.h").read_text(encoding="utf-8")
    defined = set(re.findall(r"^#define (HEARTH_[A-Z_]+) ", header, re.MULTILINE))
    used = set(re.findall(r"HEARTH_[A-Z_]+", snippets["arduino"]))
    assert used
    assert used <= defined


def test_a_wrong_device_key_is_a_clear_503(world: World) -> None:
    world.device("keyed")
    settings = service_state(world.stack.registry_app, RegistryState).settings
    replica = f"test-{secrets.token_hex(4)}"
    wrong_key = secrets.token_urlsafe(32)
    values = {
        **settings.model_dump(exclude={"mqtt_username"}),
        "replica": replica,
        "mqtt_password": world.broker.service_login("registry", replica).password,
        "device_key": wrong_key,
        "reconcile_at_start": False,
    }
    with serve_app(create_registry_app(RegistrySettings(**values)), wait_path="/readyz") as other:
        path = world.url("keyed", "/config")
        response = httpx.get(f"{other.url}{path}", headers=world.owner.headers, timeout=10)
        assert (response.status_code, response.json()["code"]) == (503, "device_key_mismatch")
        assert wrong_key not in response.text
    # Control: the registry with the right key serves the same download.
    assert world.stack.http.get(path, headers=world.owner.headers).status_code == 200


def test_reconcile_repairs_drifted_logins(world: World) -> None:
    drifted = login_of(world.device("drifted"))
    rebound = login_of(world.device("rebound"))
    with world.broker.control() as dynsec:  # somebody changes the logins behind the registry
        dynsec.run(
            [
                {
                    "command": "addRoleACL",
                    "rolename": drifted.username,
                    "acltype": "publishClientSend",
                    "topic": "hearth/#",
                    "allow": True,
                },
                {
                    "command": "modifyClient",
                    "username": drifted.username,
                    "password": "stolen-password",
                    "textdescription": "credentials generation 99",
                },
                {"command": "disableClient", "username": drifted.username},
                {"command": "modifyClient", "username": rebound.username, "clientid": "evil"},
            ]
        )
    assert refused(world.broker, drifted) == NOT_AUTHORIZED  # the drift took effect
    assert refused(world.broker, rebound) == NOT_AUTHORIZED

    response = world.stack.http.post("/registry/reconcile", headers=world.stack.admin.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert sorted(report["repaired"]) == sorted([drifted.username, rebound.username])
    assert report["created"] == report["deleted"] == []

    world.connect(rebound).close()  # bound to its own client id again
    monitor = world.monitor()
    device = world.connect(drifted)  # enabled, with the registry's password again
    outside = telemetry_topic(world.home, "rebound", "temperature")
    own = telemetry_topic(world.home, "drifted", "temperature")
    assert denied(device.publish_and_wait(outside, b"1"))  # the extra right is gone
    assert accepted(device.publish_and_wait(own, b"2"))
    monitor.wait_for_messages(1, own)
    assert monitor.received(outside) == []
    with pytest.raises(ConnectRefused):
        world.connect(Login(drifted.username, "stolen-password", drifted.client_id)).close()
    for client in (monitor, device):
        client.close()
    again = world.stack.http.post("/registry/reconcile", headers=world.stack.admin.headers)
    assert again.json()["repaired"] == []  # nothing left to do
