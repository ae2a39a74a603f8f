"""The ``hearth`` command, driven as the native stack drives it, against a real Mosquitto."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.platform.cli import main
from hearth.platform.secrets import read_secrets
from hearth.testing.broker import Login, connect_client
from hearth.testing.ports import free_port
from hearth.testing.procs import ManagedProcess


def test_secrets_command_creates_then_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secrets.env"
    assert main(["secrets", "--file", str(path)]) == 0
    first = capsys.readouterr().out
    assert "created HEARTH_BROKER_ADMIN_PASSWORD" in first
    values = read_secrets(path)
    assert not any(value in first for value in values.values())  # names only, never values
    assert main(["secrets", "--file", str(path)]) == 0
    assert "already has every value" in capsys.readouterr().out
    assert read_secrets(path) == values


def test_native_flow_secrets_config_offline_start_online(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make up` does: render, bootstrap --offline, start mosquitto, bootstrap."""
    secrets, conf, data = tmp_path / "secrets.env", tmp_path / "mosquitto.conf", tmp_path / "data"
    dynsec = data / "dynamic-security.json"
    port = free_port()
    assert (
        main(["broker-config", "--out", str(conf), "--port", str(port), "--data-dir", str(data)])
        == 0
    )
    assert f"plugin_opt_config_file {dynsec}" in conf.read_text()
    assert (
        main(
            ["bootstrap", "--offline", "--secrets-file", str(secrets), "--dynsec-file", str(dynsec)]
        )
        == 0
    )
    assert "created the dynsec file" in capsys.readouterr().out
    assert dynsec.exists()

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = ManagedProcess([mosquitto, "-c", str(conf)], tmp_path / "mosquitto.log")
    broker.start()
    try:
        broker.wait_listening("127.0.0.1", port)
        online = ["bootstrap", "--secrets-file", str(secrets), "--port", str(port)]
        assert main(online) == 0
        out = capsys.readouterr().out
        assert "created login svc-ingest-0" in out
        assert "created role svc-registry" in out
        assert main([*online, "--dynsec-file", str(dynsec)]) == 0  # file exists: no init
        assert "already up to date" in capsys.readouterr().out
        password = read_secrets(secrets)["HEARTH_INGEST_MQTT_PASSWORD"]
        client = connect_client("127.0.0.1", port, Login("svc-ingest-0", password, "ingest-0"))
        client.close()
    finally:
        broker.stop()


def test_errors_exit_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["broker-config", "--preset", "test", "--out", str(tmp_path / "x.conf")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("hearth: error: ")
    assert "port" in err
    assert main(["bootstrap", "--secrets-file", str(tmp_path / "s.env"), "--offline"]) == 1


def test_broker_config_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker-config", "--preset", "docker", "--out", "-"]) == 0
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in capsys.readouterr().out


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("hearth")
    assert script.exists()
    proc = subprocess.run(
        [str(script), "secrets", "--file", str(tmp_path / "s.env")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s.env").exists()
