"""The broker part of Hearth's test harness: a real Mosquitto with the platform's config.

Fixtures (loaded for every suite by the root ``conftest.py``):

- ``broker`` (session): ``mosquitto`` on a free port, its config rendered from
  ``mosquitto/hearth.conf.template`` (test preset), state in a temporary folder,
  bootstrapped by :func:`hearth.platform.bootstrap.bootstrap` (every role, replica ``0``
  of every service). ``broker.service_login(service, replica)`` adds any other replica's
  login, bound to its client id ``<service>-<replica>``, as ``hearth up`` does.
- ``fresh_broker`` (function): the same, new for one test, with ``sys_interval 1``: for
  tests that stop, kill or restart the broker or read ``$SYS``.
- ``mqtt_client``: ``mqtt_client(broker, login_or_service, client_id=None, protocol=5,
  **options)`` returns a connected :class:`MqttTestClient` (a paho client that records what
  it receives); every client is disconnected at teardown. A service name connects as a new
  replica of that service (or as the replica a ``<service>-<replica>`` client id names).
- ``device_login``: ``device_login(home, device, broker=None)`` creates the login
  ``dev.<home>.<device>`` (client id bound) with exactly the ACLs the registry gives a
  device (:func:`hearth.common.dynsec.device_role_acls`); deleted at teardown.

A test that needs neither fixture can build its own: ``RunningBroker.launch(tmp_path)``.
"""

from __future__ import annotations

import secrets as _random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hearth.common.dynsec import create_device_commands, delete_device_commands
from hearth.common.logins import device_username, service_client_id, service_username
from hearth.platform import broker_config
from hearth.platform.bootstrap import BootstrapResult, bootstrap, ensure_replica_logins
from hearth.platform.dynsec_control import DynsecControl
from hearth.platform.logins import ADMIN_USERNAME, PLATFORM_SERVICES, check_service
from hearth.platform.secrets import (
    ADMIN_PASSWORD_KEY,
    ensure_secrets,
    mqtt_password_key,
    read_secrets,
)
from hearth.platform.tls import TlsFiles
from hearth.testing.ports import free_port
from hearth.testing.procs import ManagedProcess

__all__ = [
    "ConnectRefused",
    "DeviceLoginFactory",
    "Login",
    "MqttClientFactory",
    "MqttTestClient",
    "RunningBroker",
    "Will",
    "broker",
    "connect_client",
    "device_login",
    "fresh_broker",
    "mqtt_client",
]

MOSQUITTO = "mosquitto"
"""The broker executable (on PATH; Debian installs /usr/sbin/mosquitto)."""

_START_TIMEOUT = 10.0
_RECONNECT_MIN_DELAY = 0.05
_NOTIFY_EVERY = 0.002
_RECHECK_EVERY = 0.005


@dataclass(frozen=True, slots=True)
class Login:
    """A broker login; ``client_id`` is set when the broker binds the login to one."""

    username: str
    password: str = field(repr=False)
    client_id: str | None = None


def _mosquitto_executable() -> str:
    found = shutil.which(MOSQUITTO) or shutil.which(MOSQUITTO, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    return found


class RunningBroker:
    """A Mosquitto process of the tests' own, with the platform's config and logins.

    Everything lives under ``root``: ``secrets.env`` (generated), ``mosquitto.conf``
    (rendered), ``data/`` (persistence and ``dynamic-security.json``), ``mosquitto.log``.
    :meth:`start` after :meth:`stop` or :meth:`kill` reuses the same port, persistence and
    dynsec file.
    """

    host: str = "127.0.0.1"

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        sys_interval: int = 10,
        autosave_interval: int = 30,
        tls: TlsFiles | None = None,
        plain: bool = True,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port(self.host)
        # With ``tls``: a second listener, MQTT over TLS with that certificate, on its own port.
        self.tls_port = free_port(self.host) if tls is not None else None
        # ``plain=False`` (HEARTH_MQTT_PLAIN=off): nothing listens on ``port``; the harness's
        # own admin sessions use the TLS port, trusting the CA (``service_port``/``service_ca``).
        self.plain = plain
        if not plain and (tls is None or tls.ca is None or self.tls_port is None):
            raise ValueError("a broker without plain MQTT needs tls with a CA")
        self.service_port: int = self.port if plain else self.tls_port  # type: ignore[assignment]
        self.service_ca: Path | None = None if plain or tls is None else tls.ca
        self.secrets_file = root / "secrets.env"
        self.secrets: dict[str, str] = dict(ensure_secrets(self.secrets_file).values)
        self.admin = Login(ADMIN_USERNAME, self.secrets[ADMIN_PASSWORD_KEY])
        self.settings = broker_config.preset(
            "test",
            base=root,
            port=self.port,
            sys_interval=sys_interval,
            autosave_interval=autosave_interval,
            tls_port=self.tls_port,
            tls_cert=tls.cert if tls else None,
            tls_key=tls.key if tls else None,
            plain=plain,
        )
        self.config_file = root / "mosquitto.conf"
        self.config_text = broker_config.write_config(self.settings, self.config_file)
        self.data_dir = self.settings.persistence_location
        self.dynsec_file = self.settings.dynsec_file
        self.log_file = root / "mosquitto.log"
        self.process = ManagedProcess(
            [_mosquitto_executable(), "-c", str(self.config_file)], self.log_file, cwd=root
        )
        self._replicas: set[tuple[str, str]] = set()
        self._replicas_lock = threading.Lock()

    @classmethod
    def launch(cls, root: Path, **options: Any) -> RunningBroker:
        """Create, start and bootstrap a broker under ``root`` (see ``__init__``'s options)."""
        broker = cls(root, **options)
        try:
            broker.bootstrap()
        except BaseException:
            broker.kill()
            raise
        return broker

    # -- life cycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the mosquitto process runs."""
        return self.process.running

    def bootstrap(self) -> BootstrapResult:
        """The platform bootstrap against this broker, both phases.

        Creates the dynsec file offline if it is missing (starting the broker only after),
        starts the broker if it is not running, then runs the online phase; finally re-reads
        the secrets file into :attr:`secrets` (a test may have changed a value).
        """
        offline = bootstrap(
            secrets_file=self.secrets_file, dynsec_file=self.dynsec_file, offline=True
        )
        if not self.running:
            self.start()
        planned = {(service, "0") for service in PLATFORM_SERVICES} | self._replicas
        replicas: dict[str, list[str]] = {}
        for service, replica in sorted(planned):
            replicas.setdefault(service, []).append(replica)
        online = bootstrap(
            secrets_file=self.secrets_file,
            host=self.host,
            port=self.service_port,
            replicas=replicas,
            ca_file=self.service_ca,
        )
        online.dynsec_file_created = offline.dynsec_file_created
        self._replicas = planned
        self.secrets = dict(read_secrets(self.secrets_file))
        self.admin = Login(ADMIN_USERNAME, self.secrets[ADMIN_PASSWORD_KEY])
        return online

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        """Start mosquitto and wait until it accepts connections."""
        self.process.start()
        self.process.wait_listening(self.host, self.service_port, timeout)

    def stop(self, timeout: float = _START_TIMEOUT) -> None:
        """Stop gracefully (SIGTERM: mosquitto saves its persistence) and wait for the exit."""
        self.process.stop(timeout)

    def kill(self) -> None:
        """Kill at once (SIGKILL): changes since the last autosave are lost."""
        self.process.kill()

    def restart(self, timeout: float = _START_TIMEOUT) -> None:
        """:meth:`stop`, then :meth:`start`."""
        self.stop(timeout)
        self.start(timeout)

    def log_text(self) -> str:
        """Everything mosquitto logged so far (all runs)."""
        return self.process.log_text()

    # -- logins ----------------------------------------------------------------------------

    def service_login(self, service: str, replica: str = "0") -> Login:
        """The login of one replica of a platform service (created when missing).

        ``svc-<service>-<replica>``, bound to client id ``<service>-<replica>``, with the
        service's password from the secrets file (what a replica started with
        ``HEARTH_<SERVICE>_REPLICA=<replica>`` logs in with).
        """
        check_service(service)
        with self._replicas_lock:
            if (service, replica) not in self._replicas:
                with self.control() as dynsec:
                    ensure_replica_logins(dynsec, self.secrets, {service: [replica]})
                self._replicas.add((service, replica))
        return Login(
            service_username(service, replica),
            self.secrets[mqtt_password_key(service)],
            client_id=service_client_id(service, replica),
        )

    def control(self, timeout: float = 5.0) -> DynsecControl:
        """A connected dynsec admin session; use it as a context manager."""
        return DynsecControl(
            self.host,
            self.service_port,
            self.admin.username,
            self.admin.password,
            timeout=timeout,
            ca_file=self.service_ca,
        ).connect()

    def create_device_login(self, home: str, device: str) -> Login:
        """Create (or re-create) a device's login and role with the registry's commands (a login
        the registry does not know: its next reconcile deletes it)."""
        username = device_username(home, device)
        password = _random.token_urlsafe(24)
        with self.control() as dynsec:
            dynsec.execute(delete_device_commands(home, device))  # leftovers: errors ignored
            dynsec.run(create_device_commands(home, device, password))
        return Login(username, password, client_id=username)

    def delete_device_login(self, home: str, device: str) -> None:
        """Delete a device's login and role (errors such as "not found" are ignored)."""
        with self.control() as dynsec:
            dynsec.execute(delete_device_commands(home, device))

    # -- clients -------------------------------------------------------------------------

    def monitor(self, topic_filter: str) -> MqttTestClient:
        """The broker admin (it may read everything) subscribed to ``topic_filter``."""
        client = connect_client(
            self.host, self.port, self.admin, client_id=f"monitor-{uuid.uuid4().hex[:8]}"
        )
        client.subscribe_and_wait(topic_filter)
        return client

    def service_client(self, service: str) -> MqttTestClient:
        """Connected as a fresh replica of ``service`` (``registry``: the side that sends
        commands to devices)."""
        login = self.service_login(service, f"test-{uuid.uuid4().hex[:8]}")
        return connect_client(self.host, self.port, login)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunningBroker {self.host}:{self.port} {state} root={self.root}>"


# --------------------------------------------------------------------------- MQTT clients


class ConnectRefused(Exception):
    """The broker refused the connection; ``reason`` is the CONNACK reason code."""

    def __init__(self, reason: ReasonCode) -> None:
        super().__init__(f"connection refused: {reason} ({reason.value:#04x})")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Will:
    """A last-will message for :func:`connect_client`."""

    topic: str
    payload: str | bytes
    qos: int = 1
    retain: bool = True


class MqttTestClient(mqtt.Client):
    """A paho client that records every message it receives (``messages``) and can wait.

    Callbacks run on paho's network thread; the waiting helpers poll under a condition so a
    test blocks only as long as it must.
    """

    def __init__(self, client_id: str, protocol: MQTTProtocolVersion, **kwargs: Any) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs
        )
        self.messages: list[mqtt.MQTTMessage] = []
        self._changed = threading.Condition()
        self._acks: dict[int, ReasonCode | None] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._connack: ReasonCode | None = None
        self._last_notify = 0.0
        self.connack_properties: Properties | None = None
        """The CONNACK's MQTT 5 properties (maximum packet size, receive maximum...)."""
        self.disconnects = 0
        """How many times the connection was lost or closed (a taken-over session counts)."""
        self.on_message = self._record_message
        self.on_disconnect = self._record_disconnect
        self.on_publish = self._record_puback
        self.on_subscribe = self._record_suback
        self.on_connect = self._record_connack

    # -- callbacks (network thread) --------------------------------------------------------

    def _notify_soon(self) -> None:
        """Wake waiters, at most every 2 ms: a burst of 20,000 messages must not make the
        waiting thread fight the network thread for the GIL on every one (waiters also
        re-check every 5 ms, so the last message of a burst is never missed)."""
        now = time.monotonic()
        if now - self._last_notify >= _NOTIFY_EVERY:
            self._last_notify = now
            self._changed.notify_all()

    def _record_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        with self._changed:
            self.messages.append(message)
            self._notify_soon()

    def _record_puback(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        with self._changed:
            self._acks[mid] = reason
            self._notify_soon()

    def _record_suback(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        with self._changed:
            self._subacks[mid] = list(reasons)
            self._changed.notify_all()

    def _record_connack(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure and self._connack is None:
            client.disconnect()  # a refused first connection is not retried
        with self._changed:
            self._connack = reason
            self.connack_properties = props
            self._changed.notify_all()

    def _record_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        with self._changed:
            self.disconnects += 1
            self._changed.notify_all()

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true (re-checked on events and every 5 ms).

        Raises ``TimeoutError`` when it is still false after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout:g} s")
                self._changed.wait(min(left, _RECHECK_EVERY))

    def received(self, topic_filter: str | None = None) -> list[mqtt.MQTTMessage]:
        """The messages received so far (only those matching ``topic_filter`` when given)."""
        with self._changed:
            return [
                m
                for m in self.messages
                if topic_filter is None or mqtt.topic_matches_sub(topic_filter, m.topic)
            ]

    def payloads(self, topic_filter: str | None = None) -> list[bytes]:
        """The payloads of :meth:`received`, in arrival order."""
        return [bytes(m.payload) for m in self.received(topic_filter)]

    def wait_for_messages(
        self, count: int = 1, topic_filter: str | None = None, timeout: float = 5.0
    ) -> list[mqtt.MQTTMessage]:
        """Wait for at least ``count`` messages (matching ``topic_filter``); return them all."""
        seen = matched = 0

        def enough() -> bool:  # runs under the lock; scans only what is new (no O(n^2))
            nonlocal seen, matched
            new = self.messages[seen:]
            seen += len(new)
            matched += sum(
                1
                for m in new
                if topic_filter is None or mqtt.topic_matches_sub(topic_filter, m.topic)
            )
            return matched >= count

        self.wait_for(enough, timeout)
        return self.received(topic_filter)

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._changed:
            self.messages.clear()

    # -- request / response ----------------------------------------------------------------

    def subscribe_and_wait(
        self, topic: str, qos: int = 1, timeout: float = 5.0, **kwargs: Any
    ) -> list[ReasonCode]:
        """Subscribe and return the SUBACK reason codes (granted QoS or a refusal such as
        ``Not authorized``, 0x87; under MQTT 3.1.1 a refusal is 0x80)."""
        result, mid = self.subscribe(topic, qos, **kwargs)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise RuntimeError(f"subscribe {topic!r} failed locally: {mqtt.error_string(result)}")
        self.wait_for(lambda: mid in self._subacks, timeout)
        with self._changed:
            return self._subacks.pop(mid)

    def publish_and_wait(
        self,
        topic: str,
        payload: str | bytes | float | None = None,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
        timeout: float = 5.0,
    ) -> ReasonCode | None:
        """Publish and wait until it is sent (QoS 0) or acknowledged (QoS 1/2).

        Returns the PUBACK reason code: under MQTT 5 a denied publish answers ``Not
        authorized`` (0x87); under MQTT 3.1.1 every PUBACK is a success, denial or not.
        """
        info = self.publish(topic, payload, qos, retain, properties)
        if qos == 0:
            info.wait_for_publish(timeout)
            return None
        self.wait_for(lambda: info.mid in self._acks, timeout)
        with self._changed:
            return self._acks.pop(info.mid)

    def close(self) -> None:
        """Disconnect (cleanly: no will) and stop the network thread."""
        self.disconnect()
        self.loop_stop()


_PROTOCOLS = {
    5: MQTTProtocolVersion.MQTTv5,
    4: MQTTProtocolVersion.MQTTv311,
    311: MQTTProtocolVersion.MQTTv311,
}


def connect_client(
    host: str,
    port: int,
    login: Login | None,
    *,
    client_id: str | None = None,
    protocol: int = 5,
    clean_start: bool = True,
    session_expiry: int | None = None,
    receive_maximum: int | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
    max_inflight: int | None = None,
    keepalive: int = 30,
    timeout: float = 5.0,
    ca_file: Path | None = None,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
) -> MqttTestClient:
    """Connect a :class:`MqttTestClient` and wait for the CONNACK.

    ``protocol`` is 5 (MQTT 5) or 4 (3.1.1). ``clean_start`` is the clean session flag under
    3.1.1; under MQTT 5 a persistent session also needs ``session_expiry`` (seconds).
    ``max_inflight`` caps this client's own unacknowledged publishes (paho's default is 20);
    ``receive_maximum`` (MQTT 5) is the window it grants the broker; with ``manual_ack`` the
    test acks each message with ``client.ack(message.mid, message.qos)``. ``ca_file``: connect
    over TLS, trusting that CA (and checking the broker's name). ``on_message`` replaces the
    recording of messages from before the connect on (a session's queued messages arrive
    right after the CONNACK).
    Raises :class:`ConnectRefused` when the broker refuses (the client is stopped then).
    """
    if protocol not in _PROTOCOLS:
        raise ValueError(f"protocol {protocol} is not 5 (MQTT 5) or 4 (MQTT 3.1.1)")
    version = _PROTOCOLS[protocol]
    cid = client_id or (login.client_id if login and login.client_id else None)
    cid = cid or f"test-{uuid.uuid4().hex[:12]}"
    extra: dict[str, Any] = {"manual_ack": manual_ack}
    if version != mqtt.MQTTv5:
        extra["clean_session"] = clean_start
    client = MqttTestClient(cid, version, **extra)
    if on_message is not None:
        client.on_message = on_message
    # Reconnect quickly after a broker restart (paho's default waits 1 s, then longer).
    client.reconnect_delay_set(min_delay=_RECONNECT_MIN_DELAY, max_delay=0.5)  # type: ignore[arg-type]
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    if login is not None:
        client.username_pw_set(login.username, login.password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file))
    if will is not None:
        client.will_set(will.topic, will.payload, will.qos, will.retain)
    connect_kwargs: dict[str, Any] = {"keepalive": keepalive}
    if version == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if session_expiry is not None:
            props.SessionExpiryInterval = session_expiry
        if receive_maximum is not None:
            props.ReceiveMaximum = receive_maximum
        connect_kwargs["clean_start"] = clean_start
        connect_kwargs["properties"] = props
    client.connect(host, port, **connect_kwargs)
    client.loop_start()
    try:
        client.wait_for(lambda: client._connack is not None, timeout)
    except TimeoutError:
        client.close()
        raise TimeoutError(f"no CONNACK from {host}:{port} within {timeout:g} s") from None
    reason = client._connack
    assert reason is not None
    if reason.is_failure:
        client.close()
        raise ConnectRefused(reason)
    return client


class MqttClientFactory(Protocol):
    """The ``mqtt_client`` fixture's signature."""

    def __call__(
        self,
        broker: RunningBroker,
        login: Login | str | None,
        client_id: str | None = None,
        protocol: int = 5,
        **options: Any,
    ) -> MqttTestClient: ...


class DeviceLoginFactory(Protocol):
    """The ``device_login`` fixture's signature."""

    def __call__(self, home: str, device: str, broker: RunningBroker | None = None) -> Login: ...


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """The session's Mosquitto: platform config, free port, every service login."""
    running = RunningBroker.launch(tmp_path_factory.mktemp("broker"))
    yield running
    running.stop()


@pytest.fixture
def fresh_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """A new Mosquitto for one test (``sys_interval 1``): stop, kill or restart it freely."""
    running = RunningBroker.launch(tmp_path_factory.mktemp("fresh-broker"), sys_interval=1)
    yield running
    running.kill()


@pytest.fixture
def mqtt_client() -> Iterator[MqttClientFactory]:
    """Factory: ``mqtt_client(broker, login_or_service, client_id=None, protocol=5, **opts)``.

    ``login_or_service`` is a :class:`Login`, a platform service name or ``None``
    (anonymous, which the broker refuses). A service name logs in as a new replica
    ``test-<hex>`` of it, or, when ``client_id`` is ``<service>-<replica>``, as that replica;
    any other ``client_id`` with a service name is refused by the broker (logins are bound).
    Options are those of :func:`connect_client`. Clients are disconnected at teardown.
    """
    clients: list[MqttTestClient] = []

    def connect(
        broker: RunningBroker,
        login: Login | str | None,
        client_id: str | None = None,
        protocol: int = 5,
        **options: Any,
    ) -> MqttTestClient:
        if isinstance(login, str):
            prefix = f"{login}-"
            replica = f"test-{uuid.uuid4().hex[:8]}"
            if client_id is not None and client_id.startswith(prefix):
                replica = client_id[len(prefix) :]
            login = broker.service_login(login, replica)
        client = connect_client(
            broker.host, broker.port, login, client_id=client_id, protocol=protocol, **options
        )
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def device_login(request: pytest.FixtureRequest) -> Iterator[DeviceLoginFactory]:
    """Factory: ``device_login(home, device, broker=None) -> Login`` (the session broker by
    default). The login ``dev.<home>.<device>`` has its client id bound and exactly the
    registry's device ACLs; it is deleted at teardown."""
    created: list[tuple[RunningBroker, str, str]] = []

    def create(home: str, device: str, broker: RunningBroker | None = None) -> Login:
        target: RunningBroker = broker if broker is not None else request.getfixturevalue("broker")
        login = target.create_device_login(home, device)
        created.append((target, home, device))
        return login

    yield create
    for target, home, device in created:
        if target.running:
            target.delete_device_login(home, device)
