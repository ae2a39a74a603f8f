"""The agent's sensors, safety rules and command line, without the platform.

The gas alarm test points the agent at a closed port: the broker is unreachable, and the
alarm must work all the same.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hearth.platform.tls import ensure_generated
from hearth.testing.broker import RunningBroker
from hearth.testing.ports import free_port
from hearth.testing.waiting import wait_until
from hearth_agent.cli import build
from hearth_agent.cli import main as agent_cli
from hearth_agent.config import AgentConfig, generate
from hearth_agent.sensors import Ds18b20, IioDht
from hearth_agent.simulate import DS18B20_ID, SimulatedWorld

DOWNLOAD: dict[str, Any] = {
    "home": "flat",
    "device": "pi-1",
    "name": "Greenhouse Pi",
    "broker_host": "127.0.0.1",
    "broker_port": 1,  # replaced per test
    "broker_tls": False,
    "username": "dev.flat.pi-1",
    "password": "not-a-real-password-just-a-test",
    "client_id": "dev.flat.pi-1",
    "status_topic": "hearth/flat/pi-1/status",
    "ack_topic": "hearth/flat/pi-1/ack",
    "command_filter": "hearth/flat/pi-1/command/+",
    "telemetry_prefix": "hearth/flat/pi-1/telemetry/",
    "state_prefix": "hearth/flat/pi-1/state/",
    "interval": 60,
    "metrics": [{"name": "gas", "unit": "ppm"}, {"name": "alarm", "kind": "boolean"}],
    "properties": [{"name": "heater", "kind": "boolean"}, {"name": "pump", "kind": "boolean"}],
}


def offline_config(tmp_path: Path, **safety: Any) -> AgentConfig:
    download = {**DOWNLOAD, "broker_port": free_port("127.0.0.1")}  # nobody listens there
    body = generate(download)
    body.update(sample_s=0.05, clock="unsynced", outbox=str(tmp_path / "outbox.jsonl"))
    body["safety"].update(safety)
    return AgentConfig.from_dict(body)


def test_ds18b20_reads_the_kernels_format_and_refuses_bad_frames(tmp_path: Path) -> None:
    world = SimulatedWorld(tmp_path)
    world.set_temperature(-3.25)
    sensor = Ds18b20(world.w1_root)
    assert sensor.read() == -3.25
    slave = world.w1_root / DS18B20_ID / "w1_slave"
    slave.write_text("72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=1\n")
    assert sensor.read() is None  # CRC mismatch
    slave.write_text("50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff t=85000\n")
    assert sensor.read() is None  # the power-on value
    assert Ds18b20(tmp_path / "no-w1").read() is None


def test_the_dht_reading_through_iio_and_a_failed_read(tmp_path: Path) -> None:
    world = SimulatedWorld(tmp_path)
    world.set_air(19.5, 61.25)
    dht = IioDht(world.iio_root)
    assert (dht.temperature(), dht.humidity()) == (19.5, 61.25)
    (world.iio_root / "iio:device0" / "in_temp_input").unlink()  # as EIO: skipped
    assert dht.temperature() is None
    assert dht.humidity() == 61.25


def test_relays_are_off_at_start_and_the_pump_stops_after_its_maximum_time(
    tmp_path: Path,
) -> None:
    world = SimulatedWorld(tmp_path / "sim")
    agent = build(offline_config(tmp_path, pump_max_on_s=0.3), world)
    try:
        relays = agent.board.relays
        assert not any(relays.is_on(name) for name in ("light", "heater", "pump"))
        assert all(world.relay_pin_high(r.pin) for r in agent.config.hardware.relays.values())
        assert agent.act("light", True) is True  # control: a relay without a limit stays on
        started = time.monotonic()
        assert agent.act("pump", True) is True
        wait_until(lambda: not relays.is_on("pump"), "the pump's safety stop")
        assert time.monotonic() - started >= 0.3
        assert relays.is_on("light")
    finally:
        agent.board.close()
    assert all(world.relay_pin_high(r.pin) for r in agent.config.hardware.relays.values())


def test_the_gas_alarm_works_with_the_broker_unreachable(tmp_path: Path) -> None:
    world = SimulatedWorld(tmp_path / "sim")
    config = offline_config(tmp_path, gas_alarm_ppm=1000.0)
    agent = build(config, world)
    alarm_pin = config.hardware.alarm_relay.pin if config.hardware.alarm_relay else -1
    buzzer_pin = config.hardware.buzzer_pin or -1
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        agent.act("heater", True)
        wait_until(lambda: len(agent.device.outbox) >= 2, "readings kept in the outbox")
        assert not agent.device.connected
        assert not agent.alarm.active  # control: normal air, no alarm
        world.set_adc(config.hardware.mcp3008_gas_channel or 0, 0.2)  # 2000 ppm of 10000
        wait_until(lambda: agent.alarm.active, "the gas alarm")
        assert not world.relay_pin_high(alarm_pin)  # alarm relay on (active low)
        assert world.pins.pin(buzzer_pin).state  # buzzer on
        assert not agent.board.relays.is_on("heater")  # heater off
        with pytest.raises(RuntimeError, match="gas alarm active"):
            agent.act("heater", True)
        world.set_adc(config.hardware.mcp3008_gas_channel or 0, 0.05)
        wait_until(lambda: not agent.alarm.active, "the alarm cleared")
        assert world.relay_pin_high(alarm_pin)
        assert not world.pins.pin(buzzer_pin).state
    finally:
        stop.set()
        thread.join(10)


def test_init_writes_the_config_from_the_download_and_run_simulates(tmp_path: Path) -> None:
    download = tmp_path / "hearth-flat-pi-1.json"
    download.write_text(json.dumps({**DOWNLOAD, "broker_port": free_port("127.0.0.1")}))
    config_file = tmp_path / "etc" / "agent.json"
    assert agent_cli(["init", str(download), "-o", str(config_file)]) == 0
    assert config_file.stat().st_mode & 0o777 == 0o600  # it holds the password
    loaded = AgentConfig.load(config_file)
    assert loaded.device.password == DOWNLOAD["password"]
    assert "password" not in repr(loaded.device)
    assert replace(loaded, sample_s=1).hardware.relays["pump"].pin == 22

    process = subprocess.Popen(
        [sys.executable, "-m", "hearth_agent.cli", "run", "-c", str(config_file), "--simulate",
         "--sim-root", str(tmp_path / "sim"), "--sample-s", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    outbox = tmp_path / "sim" / "outbox.jsonl"
    try:
        wait_until(lambda: outbox.exists() and outbox.stat().st_size > 0, "a reading spooled")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "relay pump on GPIO22: off" in output
    assert "stopped: relays off" in output
    assert "cannot reach the broker" in output
    assert DOWNLOAD["password"] not in output


@pytest.mark.filterwarnings("ignore::gpiozero.exc.PinFactoryFallback")
def test_a_bad_config_or_a_machine_without_gpio_is_a_clear_error_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(generate({**DOWNLOAD, "broker_port": free_port("127.0.0.1")})))
    outbox = str(tmp_path / "outbox.jsonl")
    assert agent_cli(["run", "-c", str(good), "--outbox", outbox]) == 2  # no Pi here
    assert "run on a Raspberry Pi, or with --simulate" in caplog.text
    bad = tmp_path / "agent.json"
    bad.write_text(json.dumps({"device": {**DOWNLOAD, "home": "Not A Slug"}}))
    assert agent_cli(["run", "-c", str(bad), "--simulate"]) == 2
    bad.write_text("{")
    assert agent_cli(["run", "-c", str(bad)]) == 2
    assert os.path.exists(bad)


# paho 2.2 drops the socket of a failed TLS handshake without closing it (garbage collection
# does, with a ResourceWarning): not the agent's socket to close.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
def test_the_agent_connects_over_tls_trusting_the_platforms_ca(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path_factory.mktemp("agent-tls")
    tls = ensure_generated(root / "tls")
    broker = RunningBroker.launch(root / "broker", tls=tls)
    try:
        assert broker.tls_port is not None
        login = broker.create_device_login("flat", "pi-1")
        download = {
            **DOWNLOAD,
            "broker_port": broker.tls_port,
            "broker_tls": True,
            "password": login.password,
        }
        monitor = broker.monitor("hearth/flat/pi-1/status")
        ca_pem = tls.ca.read_text(encoding="ascii") if tls.ca else ""
        for ca_file, ca_in_download, trusted in (
            (None, False, False),
            (str(tls.ca), False, True),
            (None, True, True),  # the download's broker_ca (issue 22)
        ):
            body = generate({**download, "broker_ca": ca_pem} if ca_in_download else download)
            body.update(outbox=str(root / "outbox.jsonl"), broker_ca_file=ca_file)
            world = SimulatedWorld(root / f"sim-{ca_file is None}-{ca_in_download}")
            agent = build(AgentConfig.from_dict(body), world)
            agent.device.start()
            try:
                if trusted:
                    connected = agent.device.session.connected.is_set
                    wait_until(connected, "the agent connected over TLS")
                    monitor.wait_for_messages(1, "hearth/flat/pi-1/status")
                else:  # the system's CAs do not know the platform's own CA
                    wait_until(
                        lambda: "certificate verify failed" in caplog.text, "the TLS refusal"
                    )
                    assert not agent.device.connected
            finally:
                agent.close()
        monitor.close()
    finally:
        broker.kill()


def test_replayed_readings_nobody_subscribed_to_stay_in_the_outbox(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """After a broker restart the agent may be back before ingest subscribed again: the
    broker acks those readings with "no matching subscribers" (0x10) and drops them, so the
    agent keeps them in the outbox until somebody listens."""
    root = tmp_path_factory.mktemp("agent-unheard")
    broker = RunningBroker.launch(root / "broker")
    try:
        login = broker.create_device_login("flat", "pi-1")
        download = {**DOWNLOAD, "broker_port": broker.port, "password": login.password}
        body = generate(download)
        body.update(outbox=str(root / "outbox.jsonl"), sample_s=0.2, clock="system")
        broker.stop()
        agent = build(AgentConfig.from_dict(body), SimulatedWorld(root / "sim"))
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            outbox = agent.device.outbox
            wait_until(lambda: len(outbox) >= 10, "readings in the outbox")
            broker.start()
            wait_until(lambda: agent.device.connected, "the agent back", timeout=30)
            wait_until(lambda: "had no subscriber" in caplog.text, "an unheard replay")
            assert len(outbox) >= 10  # kept: nobody heard them
            ingest = broker.service_client("ingest")
            try:
                ingest.subscribe_and_wait("$share/ingest/hearth/+/+/telemetry/#")
                wait_until(lambda: len(outbox) == 0, "the outbox drained", timeout=30)
                ids = {json.loads(p)["id"] for p in ingest.payloads()}
                assert {f"{agent.device.ids.boot}-{n}" for n in range(1, 11)} <= ids
            finally:
                ingest.close()
        finally:
            stop.set()
            thread.join(10)
    finally:
        broker.kill()
