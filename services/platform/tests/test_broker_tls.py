"""MQTT over TLS: a device trusting the platform's CA connects to the TLS port and publishes;
a plain connection to that port gets nowhere; the plain port still works for the LAN."""

from __future__ import annotations

import socket
import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.platform import broker_config
from hearth.platform.errors import BrokerConfigError
from hearth.platform.tls import ensure_generated
from hearth.testing.broker import RunningBroker, connect_client


def test_the_tls_listener_is_rendered_only_when_asked(tmp_path: Path) -> None:
    plain = broker_config.preset("test", base=tmp_path, port=1884, dynsec_plugin=tmp_path)
    assert "\n# off\n" in broker_config.render(plain)
    assert "certfile" not in broker_config.render(plain)
    tls = ensure_generated(tmp_path / "tls")
    with_tls = broker_config.preset(
        "test", base=tmp_path, port=1884, dynsec_plugin=tmp_path,
        tls_port=8883, tls_cert=tls.cert, tls_key=tls.key,
    )  # fmt: skip
    text = broker_config.render(with_tls)
    assert "listener 8883 127.0.0.1\n" in text
    assert f"certfile {tls.cert}\n" in text
    # Plain MQTT off: the TLS listener is the only one (and plain alone cannot be off).
    tls_only = broker_config.render(replace(with_tls, plain=False))
    assert "listener 1884" not in tls_only
    assert tls_only.count("\nlistener ") == 1
    assert "listener 8883 127.0.0.1\n" in tls_only
    with pytest.raises(BrokerConfigError, match="only with the TLS listener"):
        replace(plain, plain=False)
    with pytest.raises(BrokerConfigError, match="together"):
        broker_config.preset(
            "test", base=tmp_path, port=1884, dynsec_plugin=tmp_path, tls_port=8883
        )


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunningBroker, Path]:
    root = tmp_path_factory.mktemp("tls-broker")
    tls = ensure_generated(root / "tls")
    assert tls.ca is not None
    broker = RunningBroker.launch(root / "broker", tls=tls)
    yield broker, tls.ca  # type: ignore[misc]
    broker.stop()


def test_a_device_publishes_over_tls_with_the_platform_ca(
    tls_broker: tuple[RunningBroker, Path],
) -> None:
    broker, ca = tls_broker
    assert broker.tls_port is not None
    device = broker.create_device_login("tlshome", "sensor")
    topic = "hearth/tlshome/sensor/telemetry/temperature"
    # The reader is an ingest replica on the plain port (still there for the LAN).
    reader = connect_client(broker.host, broker.port, broker.service_login("ingest", "tls"))
    try:
        reader.subscribe_and_wait("$share/ingest/hearth/+/+/telemetry/#")
        sender = connect_client(broker.host, broker.tls_port, device, ca_file=ca)
        try:
            sender.publish_and_wait(topic, b'{"value": 21.5}', qos=1)
        finally:
            sender.close()
        assert reader.wait_for_messages(1)[0].payload == b'{"value": 21.5}'
    finally:
        reader.close()


def test_a_plain_connection_to_the_tls_port_is_refused(
    tls_broker: tuple[RunningBroker, Path], tmp_path: Path
) -> None:
    broker, ca = tls_broker
    assert broker.tls_port is not None
    device = broker.create_device_login("tlshome", "plain")
    with pytest.raises((TimeoutError, OSError)):
        connect_client(broker.host, broker.tls_port, device, timeout=3.0).close()
    # Without the platform's CA, TLS itself refuses the broker.
    other = ensure_generated(tmp_path / "other-ca")
    assert other.ca is not None
    distrusting = ssl.create_default_context(cafile=str(other.ca))
    with (
        socket.create_connection((broker.host, broker.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        distrusting.wrap_socket(raw, server_hostname=broker.host).close()
    # Positive control: the same login with the right CA connects.
    connect_client(broker.host, broker.tls_port, device, ca_file=ca).close()
