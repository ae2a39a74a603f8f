"""The broker fixtures run a real Mosquitto with the platform's rendered config."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from hearth.common.topics import command_topic, telemetry_topic
from hearth.platform import broker_config
from hearth.testing.broker import MqttTestClient, RunningBroker
from hearth.testing.ports import free_port, port_is_open, wait_for_port
from hearth.testing.procs import ManagedProcess, ProcessExited


def _directives(config_text: str) -> dict[str, list[str]]:
    """Config directives: name -> values, in order (comments and blank lines skipped)."""
    found: dict[str, list[str]] = {}
    for line in config_text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.strip().partition(" ")
            found.setdefault(name, []).append(value)
    return found


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_broker_runs_the_rendered_platform_config(broker: RunningBroker, mqtt_client) -> None:
    assert broker.config_file.read_text() == broker.config_text
    assert broker.config_text == broker_config.render(broker.settings)
    assert broker.process.pid is not None
    assert _cmdline(broker.process.pid)[-2:] == ["-c", str(broker.config_file)]
    conf = _directives(broker.config_text)
    assert conf["listener"] == [f"{broker.port} 127.0.0.1"]
    assert conf["plugin_opt_config_file"] == [str(broker.dynsec_file)]
    assert conf["allow_anonymous"] == ["false"]
    # What the running broker tells an MQTT 5 client comes from that same file.
    client = mqtt_client(broker, "realtime")
    props = client.connack_properties
    assert props is not None
    assert props.MaximumPacketSize == int(conf["max_packet_size"][0])
    assert props.ReceiveMaximum == int(conf["max_inflight_messages"][0])


def test_service_logins_and_secrets_are_exposed(broker: RunningBroker) -> None:
    login = broker.service_login("ingest")
    assert login.username == "svc-ingest-0"  # replica 0's own login, bound to its client id
    assert login.client_id == "ingest-0"
    other = broker.service_login("ingest", "extra-1")  # created on demand
    assert (other.username, other.client_id) == ("svc-ingest-extra-1", "ingest-extra-1")
    assert other.password == login.password
    assert login.password == broker.secrets["HEARTH_INGEST_MQTT_PASSWORD"]
    assert login.password not in repr(login)
    assert broker.admin.username == "hearth-admin"
    assert broker.secrets_file.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="unknown platform service"):
        broker.service_login("nope")


def test_broker_log_has_no_secret(broker: RunningBroker) -> None:
    log = broker.log_text()
    assert "mosquitto version 2.0.11 running" in log
    assert "createClient" in log  # the bootstrap's commands are logged...
    leaked = [key for key, value in broker.secrets.items() if value in log]
    assert leaked == []  # ...without their passwords


def test_fresh_broker_publishes_sys_every_second(fresh_broker: RunningBroker, mqtt_client) -> None:
    assert "sys_interval 1" in fresh_broker.config_text.splitlines()
    admin = mqtt_client(fresh_broker, fresh_broker.admin)
    admin.subscribe_and_wait("$SYS/broker/uptime")
    admin.wait_for_messages(1, timeout=3)
    first = admin.received()[0].payload
    admin.wait_for(lambda: admin.received()[-1].payload != first, timeout=3)


def _retained_value(broker: RunningBroker, mqtt_client, topic: str) -> bytes | None:
    """What a new reader gets as ``topic``'s retained value (``None``: nothing retained)."""
    reader: MqttTestClient = mqtt_client(broker, "realtime")
    marker = command_topic("probe", f"p{uuid.uuid4().hex[:8]}", "x")
    reader.subscribe_and_wait(topic)
    reader.subscribe_and_wait(marker)
    # Positive control: a live message after the subscription proves retained ones came first.
    mqtt_client(broker, "registry").publish_and_wait(marker, "x")
    reader.wait_for_messages(1, marker)
    values = reader.payloads(topic)
    return values[0] if values else None


def test_stop_and_start_keep_port_persistence_and_logins(
    fresh_broker: RunningBroker, mqtt_client, device_login
) -> None:
    topic = telemetry_topic("h1", "d1", "temp")
    login = device_login("h1", "d1", broker=fresh_broker)
    device = mqtt_client(fresh_broker, login)
    device.publish_and_wait(topic, "21.5", retain=True)
    device.close()

    fresh_broker.stop()
    assert not fresh_broker.running
    assert not port_is_open(fresh_broker.host, fresh_broker.port)
    started = time.monotonic()
    fresh_broker.start()
    assert time.monotonic() - started < 2.0  # waits on the port, not a sleep
    assert fresh_broker.running
    assert _retained_value(fresh_broker, mqtt_client, topic) == b"21.5"
    assert mqtt_client(fresh_broker, login).is_connected()  # dynsec file kept too


def test_kill_loses_what_came_after_the_last_save(
    fresh_broker: RunningBroker, mqtt_client, device_login
) -> None:
    """The crash window: SIGKILL loses changes since the last autosave; SIGTERM saves."""
    saved, lost = telemetry_topic("h1", "d1", "saved"), telemetry_topic("h1", "d1", "lost")
    login = device_login("h1", "d1", broker=fresh_broker)
    device = mqtt_client(fresh_broker, login)
    device.publish_and_wait(saved, "1", retain=True)
    fresh_broker.restart()  # graceful: saved to disk
    device.wait_for(device.is_connected)  # paho reconnects by itself
    device.publish_and_wait(lost, "2", retain=True)
    fresh_broker.kill()  # well inside the 30 s autosave interval
    fresh_broker.start()
    assert _retained_value(fresh_broker, mqtt_client, saved) == b"1"
    assert _retained_value(fresh_broker, mqtt_client, lost) is None


def test_launch_is_quick_and_gives_every_service_a_login(tmp_path: Path, mqtt_client) -> None:
    started = time.monotonic()
    broker = RunningBroker.launch(tmp_path / "b")
    try:
        assert time.monotonic() - started < 2.0
        for service in ("auth", "registry", "ingest", "realtime"):
            assert mqtt_client(broker, service).is_connected()
    finally:
        broker.kill()
    assert not broker.running


def test_wait_for_port_times_out_with_the_address() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port} within 0.2 s"):
        wait_for_port("127.0.0.1", port, timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_a_process_that_exits_instead_of_listening_is_reported_with_its_log(
    tmp_path: Path,
) -> None:
    process = ManagedProcess(["sh", "-c", "echo boom >&2; exit 3"], tmp_path / "p.log")
    process.start()
    with pytest.raises(ProcessExited, match="status 3") as exited:
        process.wait_listening("127.0.0.1", free_port(), timeout=10)
    assert "boom" in str(exited.value)
    assert process.returncode == 3
