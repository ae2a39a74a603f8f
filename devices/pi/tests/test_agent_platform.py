"""The Pi agent in --simulate mode against the real broker and the running platform.

This module's own Mosquitto (the outbox test stops it), auth and the registry on fresh
databases, and an ingest replica serving the history API. The device is provisioned through
the registry's API and the agent runs from the config file generated from its JSON download.

Commands are published exactly as docs/topics.md says the registry publishes them (QoS 1,
MQTT 5 message expiry plus ``expires_at``, built with ``hearth.common.messages.Command``) by a
registry replica's login: the REST command route ("Registry: commands with acknowledgement
and expiry, device shadow, presence") is not on main yet.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hearth.common.messages import Ack, Command, parse_state, parse_status
from hearth.common.topics import ack_topic, command_topic, state_topic
from hearth.testing.apps import RunningApp
from hearth.testing.broker import MqttTestClient, RunningBroker
from hearth.testing.database import PostgresServer, fetch, run_async
from hearth.testing.services import ServiceStack, User, running_ingest, running_stack
from hearth.testing.waiting import wait_until
from hearth_agent.agent import Agent
from hearth_agent.cli import build
from hearth_agent.config import AgentConfig, generate
from hearth_agent.simulate import SimulatedWorld

WAIT = 20.0
DEVICE = "pi-1"
METRICS = [
    {"name": "temperature", "unit": "°C", "min": -40, "max": 85},
    {"name": "air-temperature", "unit": "°C", "min": -40, "max": 85},
    {"name": "humidity", "unit": "%", "min": 0, "max": 100},
    {"name": "gas", "unit": "ppm", "min": 0, "max": 10000},
    {"name": "soil-moisture", "unit": "%", "min": 0, "max": 100},
    {"name": "motion", "kind": "boolean"},
    {"name": "alarm", "kind": "boolean"},
]
PROPERTIES = [
    {"name": "light", "kind": "boolean"},
    {"name": "heater", "kind": "boolean"},
    {"name": "pump", "kind": "boolean"},
    {"name": "gas-threshold", "kind": "number", "unit": "ppm", "min": 100, "max": 5000},
]


@dataclass
class Platform:
    broker: RunningBroker
    stack: ServiceStack
    ingest: RunningApp
    ingest_db: str
    owner: User
    home: str

    def history(self, metric: str, device: str = DEVICE) -> list[dict[str, Any]]:
        """Raw points of the history API (the last day, up to 10,000)."""
        response = httpx.get(
            f"{self.ingest.url}/telemetry/homes/{self.home}/devices/{device}/metrics/{metric}",
            params={"limit": 10_000},
            headers=self.owner.headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        points: list[dict[str, Any]] = response.json()["points"]
        return points

    def stored_ids(self, device: str) -> list[str]:
        rows = run_async(
            fetch(
                self.ingest_db,
                "SELECT msg_id FROM ingest.telemetry WHERE home = $1 AND device = $2",
                self.home,
                device,
            )
        )
        return [str(row["msg_id"]) for row in rows]

    def provision(self, slug: str) -> dict[str, Any]:
        """Add the device through the API; its JSON config download."""
        self.stack.create_device(
            self.owner, self.home, slug, metrics=METRICS, properties=PROPERTIES
        )
        response = self.stack.http.get(
            f"/registry/homes/{self.home}/devices/{slug}/config",
            params={"format": "json"},
            headers=self.owner.headers,
        )
        assert response.status_code == 200, response.text
        download: dict[str, Any] = response.json()
        return download

    def monitor(self, device: str) -> MqttTestClient:
        return self.broker.monitor(f"hearth/{self.home}/{device}/#")


@pytest.fixture(scope="module")
def platform(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    broker = RunningBroker.launch(tmp_path_factory.mktemp("agent-broker"))
    folder = tmp_path_factory.mktemp("agent-stack")
    try:
        with (
            running_stack(postgres_server, broker, folder) as stack,
            running_ingest(postgres_server, broker, stack, folder) as ingest,
        ):
            owner = stack.create_user("owner")
            home = stack.create_home(owner)["slug"]
            yield Platform(broker, stack, ingest.app, ingest.database_url, owner, home)
    finally:
        broker.kill()


class RunningAgent:
    """``hearth-agent run --simulate`` in this process (a thread), so the test sees its pins."""

    def __init__(self, config: AgentConfig, world: SimulatedWorld, drift: bool = False) -> None:
        self.world = world
        self.agent: Agent = build(config, world)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self.agent.run,
            args=(self.stop_event, world.drift if drift else None),
            daemon=True,
        )
        self.thread.start()
        wait_until(lambda: self.agent.device.connected, "the agent connected", WAIT)

    def stop(self) -> None:
        """Stop and wait (again is a no-op)."""
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def agent_config(download: dict[str, Any], tmp: Path, **overrides: Any) -> AgentConfig:
    body = generate(download)  # what `hearth-agent init` writes
    body.update(sample_s=0.5, clock="system", outbox=str(tmp / "outbox.jsonl"))
    config = AgentConfig.from_dict(body)
    return replace(config, **overrides)


def send_command(
    commander: MqttTestClient,
    home: str,
    prop: str,
    value: object,
    *,
    expires_in: float | None = 30.0,
    broker_expiry: bool = True,
) -> Command:
    """As the registry does (docs/topics.md, "Commands"): QoS 1, not retained, MQTT 5
    message expiry matching ``expires_at`` (unless ``broker_expiry`` is off)."""
    now = datetime.now(UTC)
    expires_at = None if expires_in is None else now + timedelta(seconds=expires_in)
    command = Command(
        id=uuid.uuid4(),
        value=value,
        issued_at=now,
        expires_at=expires_at,
        by="6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d",
    )
    properties = None
    if expires_in is not None and broker_expiry:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, round(expires_in))
    reason = commander.publish_and_wait(
        command_topic(home, DEVICE, prop), command.to_bytes(), qos=1, properties=properties
    )
    assert reason is not None
    assert reason.value < 0x80, reason
    return command


def acks(monitor: MqttTestClient, home: str) -> dict[str, Ack]:
    return {str(a.id): a for a in map(Ack.from_bytes, monitor.payloads(ack_topic(home, DEVICE)))}


@pytest.fixture(scope="module")
def download(platform: Platform) -> dict[str, Any]:
    return platform.provision(DEVICE)


@pytest.fixture
def world(tmp_path: Path) -> SimulatedWorld:
    simulated = SimulatedWorld(tmp_path / "sim", seed=1)
    simulated.set_temperature(21.5)
    simulated.set_air(22.25, 48.5)
    return simulated


@dataclass
class Live:
    """The agent running, the home's device topics watched, a registry replica to command."""

    running: RunningAgent
    agent: Agent
    world: SimulatedWorld
    broker: RunningBroker
    monitor: MqttTestClient
    commander: MqttTestClient
    home: str

    def command(self, prop: str, value: object, **options: Any) -> Command:
        return send_command(self.commander, self.home, prop, value, **options)

    def acks(self) -> dict[str, Ack]:
        return acks(self.monitor, self.home)


@pytest.fixture
def live(
    platform: Platform,
    download: dict[str, Any],
    world: SimulatedWorld,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Live]:
    caplog.set_level(logging.INFO, logger="hearth_device")
    running = RunningAgent(agent_config(download, tmp_path), world)
    monitor = platform.monitor(DEVICE)
    commander = platform.broker.service_client("registry")
    try:
        yield Live(
            running, running.agent, world, platform.broker, monitor, commander, platform.home
        )
    finally:
        running.stop()
        monitor.close()
        commander.close()


def test_readings_of_a_provisioned_device_come_back_from_the_history_api(
    platform: Platform, download: dict[str, Any], world: SimulatedWorld, tmp_path: Path
) -> None:
    running = RunningAgent(agent_config(download, tmp_path), world)
    try:
        wait_until(lambda: len(platform.history("temperature")) >= 2, "history", WAIT)
        wait_until(lambda: bool(platform.history("humidity")), "humidity", WAIT)
        wait_until(lambda: bool(platform.history("motion")), "motion", WAIT)
        assert {p["value"] for p in platform.history("temperature")} == {21.5}
        assert {p["value"] for p in platform.history("air-temperature")} == {22.25}
        assert {p["value"] for p in platform.history("humidity")} == {48.5}
        assert {p["value"] for p in platform.history("motion")} == {False}  # booleans stay so
        world.set_temperature(23.0)
        wait_until(
            lambda: 23.0 in {p["value"] for p in platform.history("temperature")},
            "the new temperature",
            WAIT,
        )
        boot = running.agent.device.ids.boot
        assert all(msg_id.startswith(f"{boot}-") for msg_id in platform.stored_ids(DEVICE))
    finally:
        running.stop()


def test_a_command_switches_the_relay_and_the_log_says_done(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    relays, world = live.agent.board.relays, live.world
    light_pin = live.agent.config.hardware.relays["light"].pin
    assert not relays.is_on("light")
    assert world.relay_pin_high(light_pin)  # active low board: high is off
    command = live.command("light", True)
    wait_until(lambda: str(command.id) in live.acks(), "the ack", WAIT)
    ack = live.acks()[str(command.id)]
    assert (ack.outcome, ack.value) == ("done", True)
    assert relays.is_on("light")
    assert not world.relay_pin_high(light_pin)  # the mock pin really switched
    # the state, retained, was published before the ack
    received = live.monitor.received()
    topics = [m.topic for m in received]
    light_state = state_topic(live.home, DEVICE, "light")
    ack_at = topics.index(ack_topic(live.home, DEVICE))
    last_state = max(i for i, t in enumerate(topics[:ack_at]) if t == light_state)
    assert parse_state(received[last_state].payload).value is True
    late = live.broker.monitor(light_state)  # a newcomer finds it retained
    try:
        late.wait_for_messages(1, light_state)
        (retained,) = late.received(light_state)
        assert retained.retain
        assert parse_state(retained.payload).value is True
    finally:
        late.close()
    assert any("command light=True: done" in r.getMessage() for r in caplog.records)
    live.running.stop()
    assert world.relay_pin_high(light_pin)  # off on shutdown (active low)


def test_a_command_sent_through_the_rest_api_switches_the_relay(
    platform: Platform, live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    """The one command path (issue 15): the owner's POST, the registry publishes, the agent
    acts and acks, and the call's answer is the device's verdict."""
    relays, world = live.agent.board.relays, live.world
    heater_pin = live.agent.config.hardware.relays["heater"].pin
    assert not relays.is_on("heater")
    path = f"/registry/homes/{platform.home}/devices/{DEVICE}/commands"
    response = platform.stack.http.post(
        path,
        json={"property": "heater", "value": True, "ttl": 30, "wait": 20},
        headers=platform.owner.headers,
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    answer = response.json()
    assert answer["outcome"] == "done", answer
    assert relays.is_on("heater")
    assert not world.relay_pin_high(heater_pin)  # the mock pin really switched (active low)
    assert any("command heater=True: done" in r.getMessage() for r in caplog.records)
    # an out-of-range value is refused by the registry before it reaches the device
    refused = platform.stack.http.post(
        path,
        json={"property": "gas-threshold", "value": 50_000},
        headers=platform.owner.headers,
    )
    assert refused.status_code == 422, refused.text
    assert "gas-threshold" in refused.text


def test_an_out_of_range_command_is_rejected(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    too_high = live.command("gas-threshold", 50_000)
    not_bool = live.command("pump", 1)
    control = live.command("gas-threshold", 2000)
    wait_until(lambda: str(control.id) in live.acks(), "the control's ack", WAIT)
    answers = live.acks()
    assert answers[str(too_high.id)].outcome == "rejected"
    assert answers[str(too_high.id)].reason == "value out of range"
    assert answers[str(not_bool.id)].outcome == "rejected"
    assert not live.agent.board.relays.is_on("pump")
    assert answers[str(control.id)].outcome == "done"
    assert live.agent.alarm.threshold_ppm == 2000
    assert any("rejected (value out of range)" in r.getMessage() for r in caplog.records)


def test_a_command_that_expired_while_the_agent_was_offline_is_never_acted_on(
    platform: Platform, download: dict[str, Any], world: SimulatedWorld, tmp_path: Path
) -> None:
    config = agent_config(download, tmp_path)
    first = RunningAgent(config, world)
    first.stop()  # a clean disconnect: the persistent session stays at the broker
    monitor = platform.monitor(DEVICE)
    commander = platform.broker.service_client("registry")
    try:
        # one the broker drops itself (message expiry), one only the device can catch
        dropped = send_command(commander, platform.home, "light", True, expires_in=1.0)
        late = send_command(
            commander, platform.home, "pump", True, expires_in=1.0, broker_expiry=False
        )
        assert late.expires_at is not None
        deadline = late.expires_at.timestamp() + 0.5
        wait_until(lambda: time.time() > deadline, "both commands expired", timeout=5)
        control = send_command(commander, platform.home, "heater", True, expires_in=None)
        second = RunningAgent(config, world)
        try:
            wait_until(lambda: str(control.id) in acks(monitor, platform.home), "the control", WAIT)
            answers = acks(monitor, platform.home)
            assert answers[str(control.id)].outcome == "done"  # queued, delivered, acted on
            assert second.agent.board.relays.is_on("heater")
            assert answers[str(late.id)].outcome == "expired"  # delivered, not acted on
            assert str(dropped.id) not in answers or answers[str(dropped.id)].outcome == "expired"
            assert not second.agent.board.relays.is_on("pump")
            assert not second.agent.board.relays.is_on("light")
        finally:
            second.stop()
    finally:
        monitor.close()
        commander.close()


@pytest.mark.slow
def test_the_outbox_stores_every_reading_once_after_the_broker_was_down_for_20_s(
    platform: Platform, world: SimulatedWorld, tmp_path: Path
) -> None:
    device = "pi-outbox"
    download = platform.provision(device)
    running = RunningAgent(agent_config(download, tmp_path, sample_s=1.0), world, drift=True)
    ids = running.agent.device.ids
    try:
        wait_until(lambda: len(platform.stored_ids(device)) >= 7, "live readings stored", WAIT)
        platform.broker.stop()
        down_at = time.monotonic()
        wait_until(lambda: not running.agent.device.connected, "the agent saw the broker go", WAIT)
        # measuring goes on: 20 samples of 7 metrics is 20 s at one sample a second
        outbox = running.agent.device.outbox
        wait_until(lambda: len(outbox) >= 20 * 7, "20 s of readings in the outbox", timeout=40)
        assert time.monotonic() - down_at >= 19
        platform.broker.start()
        wait_until(lambda: len(outbox) == 0, "the outbox replayed", timeout=60)
    finally:
        running.stop()
    sent = {f"{ids.boot}-{n}" for n in range(1, ids.seq + 1)}

    def all_stored() -> bool:
        return set(platform.stored_ids(device)) >= sent

    try:
        wait_until(all_stored, "every reading stored", timeout=60)
    except AssertionError:
        missing = sorted(sent - set(platform.stored_ids(device)), key=lambda i: int(i[13:]))
        rejects = run_async(
            fetch(
                platform.ingest_db,
                "SELECT reason, count(*) AS n FROM ingest.reject WHERE device = $1 GROUP BY 1",
                device,
            )
        )
        reasons = {row["reason"]: row["n"] for row in rejects}
        raise AssertionError(
            f"{len(missing)} not stored: {missing[:20]}; rejects {reasons}"
        ) from None
    stored = platform.stored_ids(device)
    assert len(stored) == len(set(stored)) == len(sent)  # exactly once
    assert len(sent) >= 25 * 7
    rows = run_async(
        fetch(
            platform.ingest_db,
            "SELECT count(*) AS n FROM ingest.telemetry WHERE device = $1 AND metric = $2",
            device,
            "temperature",
        )
    )
    assert len(platform.history("temperature", device)) == rows[0]["n"] >= 25


def test_birth_will_reconnect_and_goodbye(platform: Platform, live: Live) -> None:
    status = f"hearth/{live.home}/{DEVICE}/status"

    def presences() -> list[tuple[str, str | None]]:
        found = [parse_status(p) for p in live.monitor.payloads(status)]
        return [(s.state.value, s.reason.value if s.reason else None) for s in found]

    birth = platform.broker.monitor(status)  # a newcomer: the retained birth
    try:
        birth.wait_for_messages(1, status)
        first = parse_status(birth.payloads(status)[0])
        assert (first.state, first.reason) == ("online", "connected")
        assert first.ts is not None  # the clock counts as synchronised here
    finally:
        birth.close()
    # The network drops under the agent (no DISCONNECT): the broker sends the will, and
    # the agent reconnects by itself and is born again.
    sock = live.agent.device.session.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    wait_until(lambda: ("offline", "will") in presences(), "the will", WAIT)
    wait_until(lambda: presences()[-1:] == [("online", "connected")], "a new birth", WAIT)
    assert live.agent.device.connected
    live.running.stop()
    wait_until(lambda: presences()[-1:] == [("offline", "disconnect")], "the goodbye", WAIT)
