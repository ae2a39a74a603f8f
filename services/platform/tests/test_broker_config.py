"""Rendering mosquitto/hearth.conf.template for the native stack, docker and the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.platform import broker_config
from hearth.platform.broker_config import BrokerSettings, find_template, preset, render
from hearth.platform.errors import BrokerConfigError

# The arithmetic of docs/broker.md ("Queue arithmetic"), kept next to the check it justifies.
HOME_DEVICES = 100
MESSAGES_PER_DEVICE_PER_SECOND = 1.0  # generous: typical sensors report every 10-60 s
OUTAGE_SECONDS = 10 * 60
TEST_RUN_MESSAGES = 20_000
TELEMETRY_PAYLOAD_BYTES = 120  # JSON {"value":..,"ts":..,"id":..}; mosquitto counts payloads


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.strip().partition(" ")
            found.setdefault(name, []).append(value)
    return found


@pytest.fixture
def native(tmp_path: Path) -> BrokerSettings:
    return preset(
        "native", base=tmp_path, dynsec_plugin=Path("/usr/lib/x/mosquitto_dynamic_security.so")
    )


def test_native_preset_renders_every_placeholder(native: BrokerSettings, tmp_path: Path) -> None:
    text = render(native)
    assert "{{" not in text
    assert "}}" not in text
    conf = _directives(text)
    assert conf["listener"] == ["1884 127.0.0.1"]
    assert conf["persistence_location"] == [str(tmp_path / "var" / "mosquitto")]
    assert conf["plugin_opt_config_file"] == [
        str(tmp_path / "var" / "mosquitto" / "dynamic-security.json")
    ]
    assert conf["plugin"] == ["/usr/lib/x/mosquitto_dynamic_security.so"]
    assert conf["sys_interval"] == ["10"]
    assert conf["log_dest"] == ["stderr"]


def test_docker_preset_uses_the_eclipse_image_layout() -> None:
    conf = _directives(render(preset("docker")))
    assert conf["plugin"] == ["/usr/lib/mosquitto_dynamic_security.so"]
    assert conf["listener"] == ["1883 0.0.0.0"]
    assert conf["user"] == ["mosquitto"]
    assert conf["persistence_location"] == ["/mosquitto/data"]
    assert conf["plugin_opt_config_file"] == ["/mosquitto/data/dynamic-security.json"]
    assert conf["log_dest"] == ["stdout"]


def test_test_preset_needs_a_port_and_takes_overrides(tmp_path: Path) -> None:
    with pytest.raises(BrokerConfigError, match="port"):
        preset("test", base=tmp_path)
    settings = preset("test", base=tmp_path, port=12345, sys_interval=1, user="root")
    conf = _directives(render(settings))
    assert conf["listener"] == ["12345 127.0.0.1"]
    assert conf["sys_interval"] == ["1"]
    assert conf["user"] == ["root"]
    assert conf["persistence_location"] == [str(tmp_path / "data")]


def test_template_holds_the_platform_policy(native: BrokerSettings) -> None:
    conf = _directives(render(native))
    assert conf["allow_anonymous"] == ["false"]
    assert conf["set_tcp_nodelay"] == ["true"]
    assert conf["persistence"] == ["true"]
    assert conf["autosave_on_changes"] == ["false"]
    assert int(conf["autosave_interval"][0]) == native.autosave_interval == 30
    assert int(conf["max_packet_size"][0]) >= 256 * 1024
    assert conf["max_inflight_bytes"] == ["0"]  # Receive Maximum alone sets a v5 window
    assert conf["per_listener_settings"] == ["false"]


def test_queue_limits_cover_the_documented_load(native: BrokerSettings) -> None:
    conf = _directives(render(native))
    max_messages = int(conf["max_queued_messages"][0])
    max_bytes = int(conf["max_queued_bytes"][0])
    outage = HOME_DEVICES * MESSAGES_PER_DEVICE_PER_SECOND * OUTAGE_SECONDS
    assert max_messages >= 100_000
    assert max_messages >= TEST_RUN_MESSAGES
    assert max_messages >= outage
    assert max_bytes >= outage * TELEMETRY_PAYLOAD_BYTES
    assert max_bytes >= max_messages * TELEMETRY_PAYLOAD_BYTES  # the count binds first


def test_render_refuses_a_template_that_disagrees(native: BrokerSettings) -> None:
    full = find_template().read_text()
    with pytest.raises(BrokerConfigError, match="unknown placeholders \\['nope'\\]"):
        render(native, full + "\nx {{ nope }}\n")
    with pytest.raises(BrokerConfigError, match="unused settings \\['sys_interval'\\]"):
        render(native, full.replace("{{ sys_interval }}", "10"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", 0, "outside"),
        ("port", 70000, "outside"),
        ("user", "", "empty"),
        ("dynsec_file", Path("/a b/dyn.json"), "whitespace"),
        ("log_dest", "file relative.log", "log_dest"),
        ("autosave_interval", 0, "autosave_interval"),
    ],
)
def test_settings_refuse_values_mosquitto_would_misread(
    native: BrokerSettings, field: str, value: object, message: str
) -> None:
    fields = {f: getattr(native, f) for f in native.__slots__}
    fields[field] = value
    with pytest.raises(BrokerConfigError, match=message):
        BrokerSettings(**fields)


def test_plugin_detection(tmp_path: Path) -> None:
    missing, present = tmp_path / "a.so", tmp_path / "b.so"
    present.write_bytes(b"")
    assert broker_config.find_dynsec_plugin((missing, present)) == present
    with pytest.raises(BrokerConfigError, match="not found"):
        broker_config.find_dynsec_plugin((missing,))


def test_write_config_creates_folders(native: BrokerSettings, tmp_path: Path) -> None:
    out = tmp_path / "etc" / "mosquitto.conf"
    text = broker_config.write_config(native, out)
    assert out.read_text() == text == render(native)


def test_template_is_found_from_anywhere_in_the_repo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HEARTH_BROKER_TEMPLATE", raising=False)
    monkeypatch.chdir(tmp_path)  # outside the repo: found via this module's parents
    assert find_template().name == "hearth.conf.template"
    other = tmp_path / "custom.template"
    other.write_text("x")
    monkeypatch.setenv("HEARTH_BROKER_TEMPLATE", str(other))
    assert find_template() == other
