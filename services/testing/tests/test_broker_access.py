"""Every broker login can do what its role allows and nothing else (real Mosquitto).

Denials are proven with a positive control: on the same connection a denied publish is
followed by an allowed one, and a watcher with full read rights (the dynsec admin) must see
the allowed message and never the denied one. Under MQTT 3.1.1 a denied publish still gets a
normal PUBACK, so only the watcher can tell; under MQTT 5 the PUBACK also says 0x87.
Subscribe denials are read from the SUBACK reason codes.
"""

from __future__ import annotations

import uuid

import pytest
from paho.mqtt.reasoncodes import ReasonCode

from hearth.common.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    ack_topic,
    command_topic,
    registry_home_topic,
    service_status_topic,
    state_topic,
    status_topic,
    telemetry_topic,
    user_mark_topic,
)
from hearth.testing.broker import (
    ConnectRefused,
    Login,
    MqttTestClient,
    RunningBroker,
    connect_client,
)

NOT_AUTHORIZED = 0x87
GRANTED_QOS1 = 1
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"


def _slug() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def watcher(broker: RunningBroker, mqtt_client) -> MqttTestClient:
    """The dynsec admin subscribed to ``#``: it sees every non-``$`` message on the broker."""
    client = mqtt_client(broker, broker.admin)
    assert client.subscribe_and_wait("#")[0].value == GRANTED_QOS1
    return client


def _codes(reasons: list[ReasonCode]) -> list[int]:
    return [reason.value for reason in reasons]


def assert_publish_denied(
    client: MqttTestClient, watcher: MqttTestClient, denied: str, allowed: str, protocol: int
) -> None:
    """Publish to ``denied`` then ``allowed``: the watcher gets only the second."""
    marker = uuid.uuid4().hex
    reason = client.publish_and_wait(denied, f"denied-{marker}", qos=1)
    assert reason is not None
    if protocol == 5:
        assert reason.value == NOT_AUTHORIZED, f"{denied}: {reason}"
    else:
        assert not reason.is_failure  # 3.1.1: a denial looks like success to the publisher
    ok = client.publish_and_wait(allowed, f"allowed-{marker}", qos=1)
    assert ok is not None
    assert not ok.is_failure, f"{allowed}: {ok}"
    watcher.wait_for(lambda: f"allowed-{marker}".encode() in watcher.payloads(allowed))
    seen = [m.topic for m in watcher.received() if marker.encode() in m.payload]
    assert seen == [allowed], f"watcher saw {seen}"


# --------------------------------------------------------------------------- logging in


@pytest.mark.parametrize("protocol", [5, 4])
def test_anonymous_connect_is_refused(broker: RunningBroker, protocol: int) -> None:
    with pytest.raises(ConnectRefused) as refused:
        connect_client(broker.host, broker.port, None, protocol=protocol)
    assert refused.value.reason.value == NOT_AUTHORIZED


@pytest.mark.parametrize("protocol", [5, 4])
def test_wrong_password_is_refused(broker: RunningBroker, protocol: int) -> None:
    good = broker.service_login("auth")
    wrong = Login(good.username, good.password + "x")
    with pytest.raises(ConnectRefused):
        connect_client(broker.host, broker.port, wrong, protocol=protocol)
    client = connect_client(broker.host, broker.port, good, protocol=protocol)  # control
    client.close()


def test_every_service_login_connects_with_its_replica_client_id(
    broker: RunningBroker, mqtt_client
) -> None:
    for service in ("auth", "registry", "ingest", "realtime"):
        for replica in ("a", "b"):
            client = mqtt_client(broker, service, client_id=f"{service}-{replica}")
            assert client.is_connected()


# --------------------------------------------------------------------------- publishing

# (service, [(denied, allowed)]) - every allowed topic is the service's right; every denied
# one a right that some other login has.
_HOME, _DEVICE = "acl-home", "acl-dev"
_USER = "0b6a4a86-0d0b-4a1e-9d5d-6f1b8f2f0a11"
PUBLISH_CASES = {
    "auth": [
        (registry_home_topic(_HOME), user_mark_topic(_USER)),
        (service_status_topic("registry", "r1"), service_status_topic("auth", "r1")),
        (command_topic(_HOME, _DEVICE, "power"), user_mark_topic(_USER)),
        (telemetry_topic(_HOME, _DEVICE, "temp"), user_mark_topic(_USER)),
    ],
    "registry": [
        (telemetry_topic(_HOME, _DEVICE, "temp"), command_topic(_HOME, _DEVICE, "power")),
        (state_topic(_HOME, _DEVICE, "power"), status_topic(_HOME, _DEVICE)),
        (ack_topic(_HOME, _DEVICE), registry_home_topic(_HOME)),
        (user_mark_topic(_USER), registry_home_topic(_HOME)),
        (service_status_topic("auth", "r1"), service_status_topic("registry", "r1")),
    ],
    "ingest": [
        (telemetry_topic(_HOME, _DEVICE, "temp"), service_status_topic("ingest", "r1")),
        (command_topic(_HOME, _DEVICE, "power"), service_status_topic("ingest", "r1")),
        (registry_home_topic(_HOME), service_status_topic("ingest", "r1")),
        (user_mark_topic(_USER), service_status_topic("ingest", "r1")),
    ],
    "realtime": [
        (command_topic(_HOME, _DEVICE, "power"), service_status_topic("realtime", "r1")),
        (telemetry_topic(_HOME, _DEVICE, "temp"), service_status_topic("realtime", "r1")),
        (service_status_topic("ingest", "r1"), service_status_topic("realtime", "r1")),
        (registry_home_topic(_HOME), service_status_topic("realtime", "r1")),
    ],
}


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("service", sorted(PUBLISH_CASES))
def test_service_publishes_only_what_its_role_allows(
    broker: RunningBroker, mqtt_client, watcher: MqttTestClient, service: str, protocol: int
) -> None:
    client = mqtt_client(broker, service, protocol=protocol)
    for denied, allowed in PUBLISH_CASES[service]:
        assert_publish_denied(client, watcher, denied, allowed, protocol)


@pytest.mark.parametrize("service", ["auth", "ingest", "realtime"])
def test_only_the_registry_may_send_dynsec_commands(
    broker: RunningBroker, mqtt_client, service: str
) -> None:
    client = mqtt_client(broker, service)
    reason = client.publish_and_wait(CONTROL_TOPIC, '{"commands":[]}')
    assert reason is not None
    assert reason.value == NOT_AUTHORIZED
    registry = mqtt_client(broker, "registry")
    assert registry.publish_and_wait(CONTROL_TOPIC, '{"commands":[]}') is not None


def test_registry_manages_dynsec_and_reads_the_answers(broker: RunningBroker, mqtt_client) -> None:
    registry = mqtt_client(broker, "registry")
    assert _codes(registry.subscribe_and_wait(f"{CONTROL_TOPIC}/response")) == [GRANTED_QOS1]
    marker = uuid.uuid4().hex
    payload = f'{{"commands":[{{"command":"getDefaultACLAccess","correlationData":"{marker}"}}]}}'
    reason = registry.publish_and_wait(CONTROL_TOPIC, payload)
    assert reason is not None
    assert not reason.is_failure
    registry.wait_for(lambda: any(marker.encode() in p for p in registry.payloads()))
    (answer,) = [p for p in registry.payloads() if marker.encode() in p]
    assert b'"error"' not in answer
    assert b'"publishClientReceive","allow":false' in answer


# --------------------------------------------------------------------------- subscribing

SUBSCRIBE_CASES: dict[str, tuple[list[str], list[str]]] = {
    # service: (granted, refused)
    "auth": (  # issue 17: auth follows the marks on its own bus
        ["hearth-sys/auth/#", "hearth-sys/auth/users/+"],
        ["hearth-sys/#", "hearth/#", "#", f"{CONTROL_TOPIC}/response"],
    ),
    "registry": (
        [
            "hearth/+/+/state/#",
            "hearth/+/+/telemetry/#",  # issue 15: when a device was last heard
            "hearth/+/+/status",
            "hearth/+/+/ack",
            "hearth/h1/d1/state/power",
            "hearth-sys/auth/#",
            f"{CONTROL_TOPIC}/response",
        ],
        [
            "hearth/+/+/command/#",
            "hearth/#",
            "hearth-sys/registry/#",
            "hearth-sys/services/#",
            INGEST_SHARED_SUBSCRIPTION,
            "#",
        ],
    ),
    "ingest": (
        [INGEST_SHARED_SUBSCRIPTION, "hearth-sys/auth/#", "hearth-sys/registry/#"],
        [
            "hearth/+/+/telemetry/#",
            "$share/other/hearth/+/+/telemetry/#",
            "$share/ingest/hearth/#",
            "hearth/#",
            "hearth-sys/services/#",
            "hearth/+/+/state/#",
            "#",
        ],
    ),
    "realtime": (
        ["hearth/#", "hearth-sys/#", "hearth/h1/+/telemetry/temp", "hearth-sys/services/+/+"],
        ["#", "$SYS/#", f"{CONTROL_TOPIC}/response", "$share/ingest/hearth/+/+/telemetry/#"],
    ),
}


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("service", sorted(SUBSCRIBE_CASES))
def test_service_subscribes_only_where_its_role_allows(
    broker: RunningBroker, mqtt_client, service: str, protocol: int
) -> None:
    granted, refused = SUBSCRIBE_CASES[service]
    client = mqtt_client(broker, service, protocol=protocol)
    for topic_filter in granted:
        assert _codes(client.subscribe_and_wait(topic_filter)) == [GRANTED_QOS1], topic_filter
    for topic_filter in refused:
        (reason,) = client.subscribe_and_wait(topic_filter)
        assert reason.is_failure, f"{service} may subscribe to {topic_filter}"


def test_ingest_shared_subscription_receives_telemetry(
    broker: RunningBroker, mqtt_client, device_login
) -> None:
    home, device = _slug(), "sensor"
    ingest = mqtt_client(broker, "ingest", session_expiry=0)
    assert _codes(ingest.subscribe_and_wait(INGEST_SHARED_SUBSCRIPTION)) == [GRANTED_QOS1]
    dev = mqtt_client(broker, device_login(home, device))
    dev.publish_and_wait(telemetry_topic(home, device, "temp"), "21.5")
    (message,) = ingest.wait_for_messages(1, f"hearth/{home}/#")
    assert message.topic == telemetry_topic(home, device, "temp")
    assert message.payload == b"21.5"


def test_realtime_and_registry_receive_what_they_read(
    broker: RunningBroker, mqtt_client, device_login
) -> None:
    home, device = _slug(), "lamp"
    realtime = mqtt_client(broker, "realtime")
    registry = mqtt_client(broker, "registry")
    realtime.subscribe_and_wait(f"hearth/{home}/#")
    realtime.subscribe_and_wait("hearth-sys/#")
    registry.subscribe_and_wait("hearth/+/+/status")
    registry.subscribe_and_wait("hearth/+/+/state/#")
    dev = mqtt_client(broker, device_login(home, device))
    dev.publish_and_wait(state_topic(home, device, "power"), "on")
    dev.publish_and_wait(status_topic(home, device), '{"state":"online"}')
    registry.publish_and_wait(registry_home_topic(home), '{"event":"device"}')
    realtime.wait_for_messages(2, f"hearth/{home}/#")
    realtime.wait_for_messages(1, registry_home_topic(home))
    registry.wait_for_messages(1, state_topic(home, device, "power"))
    registry.wait_for_messages(1, status_topic(home, device))


# Every read right proven by a delivery, not only by a SUBACK: a granted subscribePattern
# without its publishClientReceive would let the subscription in and drop every message.
# (reader, its filter, the publisher that has the right to send, a topic under the filter)
READ_CASES = [
    ("registry", "hearth/+/+/ack", "device", "ack"),
    ("registry", "hearth/+/+/telemetry/#", "device", "telemetry"),
    ("registry", "hearth-sys/auth/#", "auth", "mark"),
    ("ingest", "hearth-sys/auth/#", "auth", "mark"),
    ("ingest", "hearth-sys/registry/#", "registry", "home"),
    ("realtime", "hearth/#", "device", "telemetry"),
    ("realtime", "hearth-sys/#", "auth", "mark"),
    ("realtime", "hearth-sys/#", "ingest", "service"),
]


@pytest.mark.parametrize(("reader", "topic_filter", "sender", "kind"), READ_CASES)
def test_each_read_right_delivers(
    broker: RunningBroker,
    mqtt_client,
    device_login,
    reader: str,
    topic_filter: str,
    sender: str,
    kind: str,
) -> None:
    home = _slug()
    topic = {
        "ack": ack_topic(home, "d1"),
        "telemetry": telemetry_topic(home, "d1", "temp"),
        "mark": user_mark_topic(str(uuid.uuid4())),
        "home": registry_home_topic(home),
        "service": service_status_topic("ingest", home),
    }[kind]
    client = mqtt_client(broker, reader)
    assert _codes(client.subscribe_and_wait(topic_filter)) == [GRANTED_QOS1]
    publisher = mqtt_client(broker, device_login(home, "d1") if sender == "device" else sender)
    marker = uuid.uuid4().hex
    reason = publisher.publish_and_wait(topic, marker, qos=1)
    assert reason is not None
    assert not reason.is_failure
    (message,) = [m for m in client.wait_for_messages(1, topic) if m.payload == marker.encode()]
    assert message.topic == topic


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize("protocol", [5, 4])
def test_device_publishes_its_own_topics_only(
    broker: RunningBroker, mqtt_client, device_login, watcher: MqttTestClient, protocol: int
) -> None:
    home, other_home = _slug(), _slug()
    login = device_login(home, "d1")
    device_login(home, "d2")
    dev = mqtt_client(broker, login, protocol=protocol)
    own = [
        telemetry_topic(home, "d1", "temp"),
        state_topic(home, "d1", "power"),
        ack_topic(home, "d1"),
        status_topic(home, "d1"),
    ]
    foreign = [
        telemetry_topic(home, "d2", "temp"),
        state_topic(home, "d2", "power"),
        ack_topic(home, "d2"),
        status_topic(home, "d2"),
        telemetry_topic(other_home, "d1", "temp"),
        command_topic(home, "d1", "power"),  # commands come from the platform only
        registry_home_topic(home),
        service_status_topic("ingest", "r1"),
    ]
    for denied in foreign:
        assert_publish_denied(dev, watcher, denied, own[0], protocol)
    for allowed in own:
        reason = dev.publish_and_wait(allowed, "1")
        assert reason is not None
        assert not reason.is_failure
        watcher.wait_for_messages(1, allowed)


@pytest.mark.parametrize("protocol", [5, 4])
def test_device_subscribes_to_its_own_commands_only(
    broker: RunningBroker, mqtt_client, device_login, protocol: int
) -> None:
    home = _slug()
    dev = mqtt_client(broker, device_login(home, "d1"), protocol=protocol)
    device_login(home, "d2")
    for granted in (f"hearth/{home}/d1/command/#", command_topic(home, "d1", "power")):
        assert _codes(dev.subscribe_and_wait(granted)) == [GRANTED_QOS1], granted
    for refused in (
        f"hearth/{home}/d2/command/#",
        f"hearth/{home}/+/command/#",
        f"hearth/{home}/d1/#",
        f"hearth/{home}/d1/telemetry/#",
        f"hearth/{home}/#",
        "hearth-sys/#",
        "#",
    ):
        (reason,) = dev.subscribe_and_wait(refused)
        assert reason.is_failure, f"device may subscribe to {refused}"


def test_device_reads_only_its_own_commands(
    broker: RunningBroker, mqtt_client, device_login
) -> None:
    home = _slug()
    d1 = mqtt_client(broker, device_login(home, "d1"))
    d2 = mqtt_client(broker, device_login(home, "d2"))
    d1.subscribe_and_wait(f"hearth/{home}/d1/command/#")
    d2.subscribe_and_wait(f"hearth/{home}/d2/command/#")
    registry = mqtt_client(broker, "registry")
    registry.publish_and_wait(command_topic(home, "d2", "power"), "for-d2")
    registry.publish_and_wait(command_topic(home, "d1", "power"), "for-d1")
    d2.wait_for_messages(1)
    d1.wait_for_messages(1)
    assert d1.payloads() == [b"for-d1"]
    assert d2.payloads() == [b"for-d2"]


@pytest.mark.parametrize("protocol", [5, 4])
def test_device_client_id_is_bound_to_its_login(
    broker: RunningBroker, mqtt_client, device_login, protocol: int
) -> None:
    home = _slug()
    login = device_login(home, "d1")
    assert login.username == login.client_id == f"dev.{home}.d1"
    for wrong in (f"dev.{home}.d2", "d1", f"{login.client_id}x"):
        with pytest.raises(ConnectRefused) as refused:
            connect_client(broker.host, broker.port, login, client_id=wrong, protocol=protocol)
        assert refused.value.reason.value == NOT_AUTHORIZED
    assert mqtt_client(broker, login, protocol=protocol).is_connected()


def test_withdrawn_right_stops_deliveries_on_an_existing_subscription(
    broker: RunningBroker, mqtt_client, device_login
) -> None:
    """publishClientReceive is denied by default, so a subscription outlives no right."""
    home = _slug()
    login = device_login(home, "d1")
    dev = mqtt_client(broker, login)
    dev.subscribe_and_wait(f"hearth/{home}/d1/command/#")
    registry = mqtt_client(broker, "registry")
    registry.publish_and_wait(command_topic(home, "d1", "power"), "before")
    dev.wait_for_messages(1)
    with broker.control() as dynsec:
        dynsec.call(
            "removeRoleACL",
            rolename=login.username,
            acltype="publishClientReceive",
            topic=f"hearth/{home}/d1/command/#",
        )
    watcher = mqtt_client(broker, "realtime")
    watcher.subscribe_and_wait(f"hearth/{home}/#")
    registry.publish_and_wait(command_topic(home, "d1", "power"), "after")
    watcher.wait_for_messages(1)  # positive control: the message was delivered to a reader
    registry.publish_and_wait(command_topic(home, "d1", "power"), "after-2")
    watcher.wait_for_messages(2)
    assert dev.payloads() == [b"before"]
