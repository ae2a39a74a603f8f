"""Plain MQTT off (``HEARTH_MQTT_PLAIN=off``): only the TLS listener, and the platform works.

A broker with the platform's CA and no plain listener; auth, the registry and ingest connect
over TLS trusting the CA (``mqtt_ca_file``, as ``make up`` configures them). A device takes
everything from the registry's config download (TLS port, CA as PEM, login) and publishes;
ingest stores the reading. The plain port refuses connections. Each format of the download
carries the CA (the registry's plain-broker tests check that none is there without TLS).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hearth.common.topics import telemetry_topic
from hearth.ingest.main import create_app as create_ingest_app
from hearth.ingest.migrate import MIGRATIONS as INGEST_MIGRATIONS
from hearth.platform.tls import ensure_generated
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import Login, RunningBroker, connect_client
from hearth.testing.database import PostgresServer, fetch, run_async
from hearth.testing.services import ServiceStack, User, ingest_settings, running_stack

WAIT = 15.0


@dataclass
class World:
    broker: RunningBroker
    ca: Path
    stack: ServiceStack
    ingest_db: str
    owner: User
    home: str

    def download(self, device: str, fmt: str) -> str:
        response = self.stack.http.get(
            f"/registry/homes/{self.home}/devices/{device}/config",
            params={"format": fmt},
            headers=self.owner.headers,
        )
        assert response.status_code == 200, response.text
        return response.text

    def add_device(self, slug: str, **fields: Any) -> None:
        response = self.stack.http.post(
            f"/registry/homes/{self.home}/devices",
            json={"slug": slug, "name": slug.title(), **fields},
            headers=self.owner.headers,
        )
        assert response.status_code == 201, response.text


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def world(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("tls-only")
    tls = ensure_generated(root / "tls")
    assert tls.ca is not None
    broker = RunningBroker.launch(root / "broker", tls=tls, plain=False)
    assert broker.tls_port is not None
    try:
        with running_stack(
            postgres_server,
            broker,
            root,
            reconcile_at_start=True,
            device_broker_port=broker.tls_port,
            device_broker_tls=True,
            device_broker_ca_file=tls.ca,
        ) as stack:
            ingest_db = postgres_server.create_database()
            run_async(INGEST_MIGRATIONS.upgrade(ingest_db))
            jwks = f"{stack.auth.url}/.well-known/jwks.json"
            settings = ingest_settings(broker, ingest_db, root, jwks_url=jwks, log_level="WARNING")
            assert settings.mqtt_ca_file == tls.ca  # ingest, too, speaks TLS only
            ingest: RunningApp = serve_app(create_ingest_app(settings), wait_path="/readyz")
            try:
                owner = stack.create_user("owner")
                home = stack.create_home(owner)["slug"]
                yield World(broker, tls.ca, stack, ingest_db, owner, home)
            finally:
                ingest.stop()
                postgres_server.drop_database(ingest_db)
    finally:
        broker.kill()


def test_the_plain_port_refuses_and_the_tls_port_answers(world: World) -> None:
    assert world.broker.tls_port is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((world.broker.host, world.broker.port), timeout=5).close()
    # Control: the TLS port takes a connection (and the services are ready over it).
    socket.create_connection((world.broker.host, world.broker.tls_port), timeout=5).close()
    assert world.stack.http.get("/readyz").status_code == 200


def test_a_device_from_the_downloaded_config_publishes_over_tls_and_ingest_stores_it(
    world: World, tmp_path: Path
) -> None:
    world.add_device("tls-th", type="temperature-humidity")
    config = json.loads(world.download("tls-th", "json"))
    assert (config["broker_port"], config["broker_tls"]) == (world.broker.tls_port, True)
    assert config["broker_ca"] == world.ca.read_text()
    # The board saves the CA from the download and trusts only it.
    ca_file = tmp_path / "broker-ca.pem"
    ca_file.write_text(config["broker_ca"])
    login = Login(config["username"], config["password"], config["client_id"])
    device = connect_client(
        config["broker_host"], config["broker_port"], login, ca_file=ca_file, protocol=4
    )
    topic = config["telemetry_topics"]["temperature"]
    assert topic == telemetry_topic(world.home, "tls-th", "temperature")
    device.publish_and_wait(topic, b'{"value": 19.25, "id": "tls-1"}', qos=1)
    device.close()

    def stored() -> list[tuple[str, float]]:
        rows = run_async(
            fetch(
                world.ingest_db,
                "SELECT device, value FROM ingest.telemetry WHERE home = $1",
                world.home,
            )
        )
        return [(r["device"], r["value"]) for r in rows]

    wait_until(lambda: bool(stored()), "the reading stored by ingest (over TLS)")
    assert stored() == [("tls-th", 19.25)]


def test_every_format_carries_the_ca(world: World, tmp_path: Path) -> None:
    world.add_device("tls-fmt", type="light")
    pem = world.ca.read_text()
    tls_port = str(world.broker.tls_port)

    (tmp_path / "hearth.env").write_text(world.download("tls-fmt", "env"))
    shell = subprocess.run(
        ["sh", "-c", '. ./hearth.env && printf "%s|%s|%s" "$HEARTH_BROKER_PORT" '
         '"$HEARTH_BROKER_TLS" "$HEARTH_BROKER_CA"'],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shell.stdout == f"{tls_port}|1|{pem}"

    module: dict[str, Any] = {}
    exec(compile(world.download("tls-fmt", "micropython"), "config.py", "exec"), module)  # noqa: S102
    assert (module["BROKER_PORT"], module["BROKER_TLS"], module["BROKER_CA"]) == (
        world.broker.tls_port,
        True,
        pem,
    )

    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to check the arduino header with")
    (tmp_path / "hearth_config.h").write_text(world.download("tls-fmt", "arduino"))
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "hearth_config.h"\n'
        "int main(void) {\n#ifdef HEARTH_BROKER_CA\n"
        'printf("%d|%d|%s", HEARTH_BROKER_PORT, HEARTH_BROKER_TLS, HEARTH_BROKER_CA);\n'
        "#endif\nreturn 0; }\n"
    )
    subprocess.run(
        [compiler, "-std=c99", "-Wall", "-Werror", "main.c", "-o", "main"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    ran = subprocess.run(["./main"], cwd=tmp_path, capture_output=True, check=True)
    assert ran.stdout.decode() == f"{tls_port}|1|{pem}"
