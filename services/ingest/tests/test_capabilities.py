"""Capability-aware ingest for real: the registry, ingest and realtime on Mosquitto and PostgreSQL.

Devices are made at the registry (``stack``), which publishes their capability snapshots;
ingest checks every reading against them: unknown devices and values outside a declared
range are rejects (seen in the rejects API), undeclared metrics are stored and reported to
the registry as discovered (after which the exact realtime room for one delivers), unless
the device refuses them. Each denial has its positive control.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.common.topics import registry_device_topic
from hearth.ingest.config import IngestSettings
from hearth.ingest.main import create_app
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import DeviceLoginFactory, MqttClientFactory, RunningBroker
from hearth.testing.database import PostgresServer, fetch, run_async
from hearth.testing.services import (
    ServiceStack,
    User,
    ingest_settings,
    realtime_settings,
    running_stack,
    start_realtime,
)
from hearth.testing.sockets import ClientFactory

WAIT = 15.0
"""Seconds any one condition may take (a loaded box)."""


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``probe`` every 20 ms until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.02)
    return value


@dataclass
class Ingest:
    app: RunningApp
    http: httpx.Client
    database_url: str


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """This module's own Mosquitto (ingest's persistent ``$share/ingest`` session must not
    outlive the module on the session's broker)."""
    running = RunningBroker.launch(tmp_path_factory.mktemp("caps-broker"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer,
    broker: RunningBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceStack]:
    with running_stack(postgres_server, broker, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
def realtime(
    stack: ServiceStack, broker: RunningBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    with start_realtime(
        realtime_settings(stack, broker, tmp_path_factory.mktemp("realtime"))
    ) as running:
        yield running


@pytest.fixture(scope="module")
def ingest(
    stack: ServiceStack,
    broker: RunningBroker,
    postgres_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Ingest]:
    url = postgres_server.create_database()
    settings = caps_ingest_settings(stack, broker, url, tmp_path_factory.mktemp("ingest-caps"))
    try:
        with serve_ingest(settings) as running:
            yield running
    finally:
        postgres_server.drop_database(url)


def caps_ingest_settings(
    stack: ServiceStack, broker: RunningBroker, url: str, tmp: Path, **extra: Any
) -> IngestSettings:
    """An ingest replica of the test's own on ``broker`` and ``url``, asking ``stack``."""
    return ingest_settings(
        broker,
        url,
        tmp,
        jwks_url=f"{stack.auth.url}/.well-known/jwks.json",
        registry_url=stack.registry.url,
        token_leeway=0,
        log_level="WARNING",
        **extra,
    )


@contextlib.contextmanager
def serve_ingest(settings: IngestSettings) -> Iterator[Ingest]:
    """Serve an ingest app until ``/readyz`` (database, subscription, device catalogue) is 200."""
    with serve_app(create_app(settings), wait_path="/healthz") as app:
        wait_for("ingest ready", lambda: httpx.get(f"{app.url}/readyz").status_code == 200)
        with httpx.Client(base_url=app.url, timeout=30) as http:
            yield Ingest(app, http, settings.database)


@dataclass
class Home:
    slug: str
    owner: User


def make_home(stack: ServiceStack) -> Home:
    """A home with ``node`` (temperature, -40..85 °C) and ``strict`` (refuses undeclared)."""
    owner = stack.create_user("owner")
    home = stack.create_home(owner)["slug"]
    temperature = {"name": "temperature", "unit": "°C", "min": -40, "max": 85}
    stack.create_device(owner, home, "node", metrics=[temperature])
    stack.create_device(owner, home, "strict", metrics=[temperature], refuse_undeclared=True)
    return Home(home, owner)


def stored(ingest: Ingest, home: str, device: str, metric: str) -> list[float]:
    rows = run_async(
        fetch(
            ingest.database_url,
            "SELECT value FROM ingest.telemetry WHERE home = $1 AND device = $2 AND metric = $3 "
            "ORDER BY received_at",
            home,
            device,
            metric,
        )
    )
    return [r["value"] for r in rows]


def rejects(ingest: Ingest, home: Home, **params: str) -> list[dict[str, Any]]:
    response = ingest.http.get(
        f"/telemetry/homes/{home.slug}/rejects", params=params, headers=home.owner.headers
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def device_metrics(stack: ServiceStack, home: Home, device: str) -> list[dict[str, Any]]:
    response = stack.http.get(
        f"/registry/homes/{home.slug}/devices/{device}", headers=home.owner.headers
    )
    assert response.status_code == 200, response.text
    metrics: list[dict[str, Any]] = response.json()["metrics"]
    return metrics


def rejected_total(ingest: Ingest, reason: str) -> float:
    text = ingest.http.get("/metrics").text
    match = re.search(rf'^hearth_ingest_rejected_total\{{reason="{reason}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_a_discovered_metric_is_stored_registered_and_its_exact_room_then_delivers(
    ingest: Ingest,
    stack: ServiceStack,
    realtime: RunningApp,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
    clients: ClientFactory,
) -> None:
    home = make_home(stack)
    device = mqtt_client(broker, device_login(home.slug, "node"))
    pressure = f"hearth/{home.slug}/node/telemetry/pressure"
    watcher = clients("python", realtime.url)
    assert await watcher.connect(stack.login(home.owner.username)) is None

    # Before: the exact room of the undeclared metric is refused; the declared one is not.
    refused = await watcher.call("subscribe", {"topic": pressure})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "not_found"
    declared = await watcher.call(
        "subscribe", {"topic": f"hearth/{home.slug}/node/telemetry/temperature"}
    )
    assert declared["ok"] is True, declared

    await asyncio.to_thread(device.publish_and_wait, pressure, b"1013")
    await asyncio.to_thread(
        wait_for, "pressure stored", lambda: stored(ingest, home.slug, "node", "pressure")
    )
    await asyncio.to_thread(
        wait_for,
        "pressure registered as discovered",
        lambda: len(device_metrics(stack, home, "node")) == 2,
    )
    assert device_metrics(stack, home, "node")[1] == {
        "name": "pressure",
        "unit": "",
        "kind": "number",
        "min": None,
        "max": None,
    }  # no unit or range: only its name was learnt

    # Realtime drops its cached refusal on the registry's device event, published right
    # after the commit the registry's API already shows.
    deadline = time.monotonic() + WAIT
    while not (joined := await watcher.call("subscribe", {"topic": pressure}))["ok"]:
        assert joined["error"]["code"] == "not_found", joined
        assert time.monotonic() < deadline, f"the exact room still refused: {joined}"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(device.publish_and_wait, pressure, b"1014")
    message = await watcher.wait_message(pressure, lambda m: m["payload"] == 1014)
    assert message["topic"] == pressure
    await asyncio.to_thread(
        wait_for,
        "the second pressure stored",
        lambda: stored(ingest, home.slug, "node", "pressure") == [1013.0, 1014.0],
    )
    assert rejects(ingest, home) == []


def test_a_value_outside_the_declared_range_is_in_the_rejects_api_with_its_bound(
    ingest: Ingest,
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    home = make_home(stack)
    device = mqtt_client(broker, device_login(home.slug, "node"))
    topic = f"hearth/{home.slug}/node/telemetry/temperature"
    device.publish_and_wait(topic, b"500")
    device.publish_and_wait(topic, b"-41")
    device.publish_and_wait(topic, b"85")  # positive control: the bound itself is in range
    found = wait_for("two rejects", lambda: len(r := rejects(ingest, home)) == 2 and r)
    assert sorted((r["reason"], r["detail"], r["payload"]) for r in found) == [
        ("out_of_declared_range", "-41.0 is below min -40.0", "-41"),
        ("out_of_declared_range", "500.0 is above max 85.0", "500"),
    ]
    assert {r["device"] for r in found} == {"node"}
    wait_for("the in-range value stored", lambda: stored(ingest, home.slug, "node", "temperature"))
    assert stored(ingest, home.slug, "node", "temperature") == [85.0]


def test_a_reading_of_an_unknown_device_is_a_counted_reject(
    ingest: Ingest,
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    home = make_home(stack)
    before = rejected_total(ingest, "unknown_device")
    # A broker login exists for "ghost", but the registry has no such device.
    ghost = mqtt_client(broker, device_login(home.slug, "ghost"))
    ghost.publish_and_wait(f"hearth/{home.slug}/ghost/telemetry/temperature", b"20")
    # Positive control: the registered device's reading is stored.
    node = mqtt_client(broker, device_login(home.slug, "node"))
    node.publish_and_wait(f"hearth/{home.slug}/node/telemetry/temperature", b"20")
    found = wait_for("the reject", lambda: rejects(ingest, home))
    assert [(r["reason"], r["device"]) for r in found] == [("unknown_device", "ghost")]
    assert "ghost" in found[0]["detail"]
    assert rejected_total(ingest, "unknown_device") == before + 1
    wait_for("node's reading", lambda: stored(ingest, home.slug, "node", "temperature"))
    assert stored(ingest, home.slug, "ghost", "temperature") == []

    # Deleting a device clears its retained snapshot: ingest forgets it (the registry also
    # deletes its broker login, so it cannot publish any more; the catalogue's handling of
    # the empty snapshot: test_pipeline.py).
    watcher = mqtt_client(broker, broker.service_login("realtime", "caps-watcher"))
    snapshot_topic = registry_device_topic(home.slug, "node")
    watcher.subscribe_and_wait(snapshot_topic)
    assert json.loads(watcher.wait_for_messages(1)[0].payload)["device"] == "node"
    deleted = stack.http.delete(
        f"/registry/homes/{home.slug}/devices/node", headers=home.owner.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert watcher.wait_for_messages(2)[1].payload == b""


def test_a_device_marked_to_refuse_undeclared_metrics_has_them_rejected(
    ingest: Ingest,
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    home = make_home(stack)
    strict = mqtt_client(broker, device_login(home.slug, "strict"))
    humidity = f"hearth/{home.slug}/strict/telemetry/humidity"
    strict.publish_and_wait(humidity, b"40")
    strict.publish_and_wait(f"hearth/{home.slug}/strict/telemetry/temperature", b"20")
    found = wait_for("the reject", lambda: rejects(ingest, home, device="strict"))
    assert [(r["reason"], r["topic"]) for r in found] == [("undeclared_metric", humidity)]
    assert "refuses undeclared metrics" in found[0]["detail"]
    wait_for("the declared metric", lambda: stored(ingest, home.slug, "strict", "temperature"))
    assert stored(ingest, home.slug, "strict", "humidity") == []
    assert [m["name"] for m in device_metrics(stack, home, "strict")] == ["temperature"]

    # Positive control: the same device, unmarked at the registry, stores it and learns it.
    changed = stack.http.patch(
        f"/registry/homes/{home.slug}/devices/strict",
        json={"refuse_undeclared": False},
        headers=home.owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["refuse_undeclared"] is False

    # The registry published the new snapshot (acknowledged) before it answered: ingest
    # hears it before this reading.
    strict.publish_and_wait(humidity, b"41")
    wait_for("humidity stored", lambda: stored(ingest, home.slug, "strict", "humidity"))
    assert stored(ingest, home.slug, "strict", "humidity") == [41.0]
    wait_for(
        "humidity discovered",
        lambda: (
            [m["name"] for m in device_metrics(stack, home, "strict")]
            == ["temperature", "humidity"]
        ),
    )


def test_readings_queued_while_ingest_was_away_wait_for_the_snapshots_not_rejected(
    fresh_broker: RunningBroker,
    postgres_server: PostgresServer,
    tmp_path: Path,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> None:
    """The persistent session delivers queued telemetry on connect, before the retained
    snapshots of the new subscription: ingest holds it until its barrier came back.

    On a broker of its own: no other ingest session of the ``$share/ingest`` group may take
    a share of the queued readings."""
    broker = fresh_broker
    url = postgres_server.create_database()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(postgres_server.drop_database, url)
        stack = cleanup.enter_context(running_stack(postgres_server, broker, tmp_path / "stack"))
        # Batches of one: the first queued reading is classified as soon as it arrives, long
        # before the snapshots that follow the queue on the wire.
        settings = caps_ingest_settings(stack, broker, url, tmp_path, batch_max_rows=1)
        with serve_ingest(settings):
            pass  # the persistent session and its subscriptions now exist; ingest is away
        home = make_home(stack)  # devices made while ingest is away: ingest has not heard them
        node = mqtt_client(broker, device_login(home.slug, "node", broker))
        ghost = mqtt_client(broker, device_login(home.slug, "ghost", broker))
        queued = [n / 10 for n in range(200)]  # 0 to 19.9: within the declared range
        for value in queued:
            node.publish(f"hearth/{home.slug}/node/telemetry/temperature", str(value), qos=1)
        node.publish_and_wait(f"hearth/{home.slug}/node/telemetry/temperature", b"20")
        ghost.publish_and_wait(f"hearth/{home.slug}/ghost/telemetry/temperature", b"9")
        with serve_ingest(settings) as again:
            wait_for(
                "the queued readings stored",
                lambda: stored(again, home.slug, "node", "temperature") == [*queued, 20.0],
            )
            # Positive control: the unknown device queued with them is still rejected.
            found = wait_for("the ghost's reject", lambda: rejects(again, home))
            assert [(r["reason"], r["device"]) for r in found] == [("unknown_device", "ghost")]
