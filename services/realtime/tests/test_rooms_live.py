"""Realtime against the real broker, auth and registry, with both Socket.IO clients.

Every behaviour test runs with python-socketio's AsyncClient and with the official
socket.io-client 4 under node: connect refusals, subscribe refusals, a device's publish
reaching the room, the last value on join, overlapping rooms, withdrawal and expiry.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from hearth.testing.apps import RunningApp
from hearth.testing.broker import (
    DeviceLoginFactory,
    MqttClientFactory,
    MqttTestClient,
    RunningBroker,
)
from hearth.testing.services import ServiceStack, User
from hearth.testing.sockets import ClientFactory
from hearth.testing.tokens import TokenMinter

KINDS = ["python", "js"]


@dataclass
class Home:
    """A home with an owner, a viewer, one registered sensor and that sensor's MQTT client."""

    slug: str
    owner: User
    viewer: User
    device: str
    sensor: MqttTestClient

    def topic(self, metric: str = "temperature") -> str:
        return f"hearth/{self.slug}/{self.device}/telemetry/{metric}"

    @property
    def status(self) -> str:
        return f"hearth/{self.slug}/{self.device}/status"

    async def publish(
        self, payload: Any, metric: str = "temperature", *, retain: bool = False
    ) -> None:
        """The sensor publishes (QoS 1, acknowledged) a reading."""
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        reason = await asyncio.to_thread(
            self.sensor.publish_and_wait, self.topic(metric), data, 1, retain
        )
        assert reason is not None
        assert not reason.is_failure


def make_home(
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> Home:
    owner = stack.create_user("owner")
    viewer = stack.create_user("viewer")
    slug = stack.create_home(owner)["slug"]
    stack.create_device(owner, slug, "sensor", type="temperature-humidity")
    stack.add_member(owner, slug, viewer, "viewer")
    login = device_login(slug, "sensor", broker)
    return Home(slug, owner, viewer, "sensor", mqtt_client(broker, login))


@pytest.fixture
def home(
    stack: ServiceStack,
    broker: RunningBroker,
    device_login: DeviceLoginFactory,
    mqtt_client: MqttClientFactory,
) -> Home:
    """A fresh home (random slug) with its owner, a viewer and a connected sensor."""
    return make_home(stack, broker, device_login, mqtt_client)


async def connected(clients: ClientFactory, kind: str, url: str, token: str) -> Any:
    client = clients(kind, url)
    await client.start()
    refused = await client.connect(token)
    assert refused is None, refused
    return client


# --------------------------------------------------------------------------- connect


@pytest.mark.parametrize("kind", KINDS)
async def test_connect_is_refused_for_bad_tokens_with_a_visible_reason(
    kind: str,
    stack: ServiceStack,
    realtime: RunningApp,
    clients: ClientFactory,
    mint_token: TokenMinter,
) -> None:
    user = stack.create_user()
    expired = stack.minter()(user.id, iat=time.time() - 100, ttl=10)
    cases = [
        (None, "missing"),
        ("not-a-jwt", "invalid"),
        (mint_token(user.id), "unknown_key"),  # signed by a key auth never published
        (expired, "expired"),
    ]
    for token, reason in cases:
        refused = await clients(kind, realtime.url).connect(token)
        assert refused == {"message": "unauthorized", "data": {"reason": reason}}, token
    assert await clients(kind, realtime.url).connect(user.token) is None
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{realtime.url}/metrics")).text
    assert 'hearth_realtime_refusals_total{code="unauthorized",event="connect"}' in metrics


# --------------------------------------------------------------------------- subscribe


@pytest.mark.parametrize("kind", KINDS)
async def test_subscribe_is_refused_for_unknown_foreign_and_invalid_topics(
    kind: str,
    stack: ServiceStack,
    realtime: RunningApp,
    clients: ClientFactory,
    home: Home,
) -> None:
    other_owner = stack.create_user("other")
    other = stack.create_home(other_owner)["slug"]
    stack.create_device(other_owner, other, "sensor", type="temperature-humidity")
    client = await connected(clients, kind, realtime.url, home.viewer.token)

    async def code_of(topic: Any) -> str:
        ack = await client.call("subscribe", {"topic": topic})
        assert ack["ok"] is False, ack
        assert isinstance(ack["error"]["message"], str)
        code: str = ack["error"]["code"]
        return code

    assert await code_of(home.topic("pressure")) == "not_found"  # no such metric
    assert await code_of(f"hearth/{home.slug}/ghost/telemetry/temperature") == "not_found"
    assert await code_of(f"hearth/{other}/sensor/telemetry/temperature") == "not_found"
    assert await code_of(f"hearth/{other}/#") == "not_found"
    assert await code_of("hearth/+/sensor/telemetry/temperature") == "invalid"
    assert await code_of("hearth-sys/auth/users/+") == "invalid"
    assert await code_of("$SYS/#") == "invalid"
    assert await code_of("hearth/a/#/b") == "invalid"
    assert await code_of(42) == "invalid"
    # The viewer may read its own home; the per-socket room limit (4 here) then applies.
    for topic in [home.topic(), home.topic("humidity"), home.status, f"hearth/{home.slug}/#"]:
        ack = await client.call("subscribe", {"topic": topic})
        assert ack == {"ok": True, "topic": topic, "last": []}
    assert await code_of(f"hearth/{home.slug}/{home.device}/#") == "limit"
    assert (await client.call("unsubscribe", {"topic": home.status})) == {"ok": True}
    assert (await client.call("subscribe", {"topic": f"hearth/{home.slug}/+/status"}))["ok"]
    publish = await client.call("publish", {"topic": "x", "payload": 1})
    assert publish["ok"] is False
    assert publish["error"]["code"] == "invalid"


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize("kind", KINDS)
async def test_a_device_publish_reaches_the_room_and_the_last_value_arrives_on_join(
    kind: str, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    topic = home.topic()
    await home.publish(21.5, retain=True)  # retained before anyone watches
    first = await connected(clients, kind, realtime.url, home.viewer.token)
    ack = await first.call("subscribe", {"topic": topic})
    assert ack["ok"] is True
    assert ack["topic"] == topic
    # The room's broker subscription brings the retained value: to the first joiner as a
    # retained message (it may even come before the ack).
    retained = await first.wait_message(topic, lambda m: m["payload"] == 21.5)
    assert retained["retained"] is True
    assert retained["topic"] == topic

    await home.publish({"value": 22.25, "id": "b1-1"})
    live = await first.wait_message(topic, lambda m: m["payload"] == {"value": 22.25, "id": "b1-1"})
    assert live["retained"] is False
    assert live["room"] == topic
    assert live["ts"].endswith("Z")

    await home.publish("not json at all")
    text = await first.wait_message(topic, lambda m: m["payload"] == "not json at all")
    assert text["retained"] is False

    # A later joiner gets the room's last value in its ack.
    second = await connected(clients, kind, realtime.url, home.owner.token)
    ack = await second.call("subscribe", {"topic": topic})
    assert ack["ok"] is True
    assert [(v["topic"], v["payload"]) for v in ack["last"]] == [(topic, "not json at all")]
    assert ack["last"][0]["ts"] == text["ts"]


def publish_burst(sensor: MqttTestClient, topic: str, marker: str, count: int) -> None:
    """Publish ``count`` readings as fast as paho sends them, QoS 0 and 1 alternating."""
    infos = [
        sensor.publish(topic, json.dumps({"n": n, "burst": marker}), qos=n % 2)
        for n in range(count)
    ]
    for info in infos:
        info.wait_for_publish(timeout=10)
        assert info.is_published()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fast_burst_arrives_exactly_once_and_in_order_across_message_and_messages(
    kind: str, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    topic, count = home.topic(), 500
    client = await connected(clients, kind, realtime.url, home.viewer.token)
    assert (await client.call("subscribe", {"topic": topic}))["ok"]
    marker = uuid.uuid4().hex[:8]

    def burst() -> list[dict[str, Any]]:
        return [
            m
            for m in client.messages(topic)
            if isinstance(m["payload"], dict) and m["payload"].get("burst") == marker
        ]

    await asyncio.to_thread(publish_burst, home.sensor, topic, marker, count)
    await client.wait_for(lambda: len(burst()) >= count, timeout=15)
    await asyncio.sleep(0.1)  # anything duplicated would have arrived by now
    numbers = [m["payload"]["n"] for m in burst()]
    assert sorted(numbers) == list(range(count))  # every one, exactly once
    # In publish order per QoS (MQTT orders each QoS's flow; realtime adds no reordering).
    for qos in (0, 1):
        assert [n for n in numbers if n % 2 == qos] == list(range(qos, count, 2))
    assert all(m["room"] == topic and m["retained"] is False for m in burst())
    # A socket whose writer keeps up gets each message alone; one that falls behind gets
    # bursts (forced in test_service.py), and a burst is never 0 or 1 items.
    bursts = client.received("messages")
    assert all(isinstance(b, list) and len(b) >= 2 for b in bursts)


@pytest.mark.parametrize("kind", KINDS)
async def test_overlapping_rooms_each_receive_a_message_exactly_once(
    kind: str, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    narrow, wide = home.topic(), f"hearth/{home.slug}/#"
    both = await connected(clients, kind, realtime.url, home.viewer.token)
    only_wide = await connected(clients, kind, realtime.url, home.owner.token)
    for client, rooms in [(both, [narrow, wide]), (only_wide, [wide])]:
        for room in rooms:
            assert (await client.call("subscribe", {"topic": room}))["ok"]
    marker = f"m-{uuid.uuid4().hex[:6]}"
    await home.publish({"value": 1, "id": "x1-1", "tag": marker})
    await home.publish({"value": 2, "id": "x1-2"}, metric="humidity")  # wide room only
    await home.publish({"value": 3, "id": "x1-3"})  # sent last: the positive control
    for client in (both, only_wide):
        await client.wait_message(wide, lambda m: m["payload"].get("id") == "x1-3")

    def count(client: Any, room: str, msg_id: str) -> int:
        return sum(
            1
            for m in client.messages(room)
            if isinstance(m["payload"], dict) and m["payload"].get("id") == msg_id
        )

    await both.wait_message(narrow, lambda m: m["payload"].get("id") == "x1-3")
    assert [count(both, narrow, i) for i in ("x1-1", "x1-2", "x1-3")] == [1, 0, 1]
    assert [count(both, wide, i) for i in ("x1-1", "x1-2", "x1-3")] == [1, 1, 1]
    assert [count(only_wide, wide, i) for i in ("x1-1", "x1-2", "x1-3")] == [1, 1, 1]
    assert count(only_wide, narrow, "x1-1") == 0


async def test_status_rooms_see_the_device_go_online_and_offline(
    realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    client = await connected(clients, "python", realtime.url, home.viewer.token)
    assert (await client.call("subscribe", {"topic": home.status}))["ok"]
    online = {"state": "online", "reason": "connected", "ts": "2026-11-21T10:00:00Z"}
    for payload in (json.dumps(online), "offline"):
        reason = await asyncio.to_thread(
            home.sensor.publish_and_wait, home.status, payload, 1, True
        )
        assert reason is not None
        assert not reason.is_failure
    await client.wait_message(home.status, lambda m: m["payload"] == "offline")
    assert [m["payload"] for m in client.messages(home.status)] == [online, "offline"]


# --------------------------------------------------------------------------- withdrawal


@pytest.mark.parametrize("kind", KINDS)
async def test_a_viewer_removed_from_the_home_stops_receiving_within_a_second(
    kind: str, stack: ServiceStack, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    topic = home.topic()
    viewer = await connected(clients, kind, realtime.url, home.viewer.token)
    owner = await connected(clients, kind, realtime.url, home.owner.token)
    for client in (viewer, owner):
        assert (await client.call("subscribe", {"topic": topic}))["ok"]
    response = await asyncio.to_thread(
        stack.http.delete,
        f"/registry/homes/{home.slug}/members/{home.viewer.id}",
        headers=home.owner.headers,
    )
    assert response.status_code == 204, response.text
    revoked = await viewer.wait_for(lambda: viewer.received("revoked"), timeout=1.0)
    assert revoked == [{"topic": topic, "reason": "not_found"}]
    await home.publish({"value": 5, "id": "r1-1"})
    await owner.wait_message(topic, lambda m: m["payload"]["id"] == "r1-1")  # control
    assert not [m for m in viewer.messages() if m["payload"] == {"value": 5, "id": "r1-1"}]
    assert viewer.connected  # only the room is withdrawn
    again = await viewer.call("subscribe", {"topic": topic})
    assert again["ok"] is False
    assert again["error"]["code"] == "not_found"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_token_is_disconnected(
    kind: str, stack: ServiceStack, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    client = clients(kind, realtime.url)
    await client.start()  # node is up before the token's 1.5 s start
    short = stack.minter()(home.viewer.id, ttl=1.5)
    assert await client.connect(short) is None
    assert (await client.call("subscribe", {"topic": home.topic()}))["ok"]
    await client.wait_for(lambda: client.received("disconnect"), timeout=4.0)
    assert client.received("revoked") == [{"topic": home.topic(), "reason": "expired"}]
    assert not client.connected


async def test_reauth_extends_the_session_and_refuses_another_users_token(
    stack: ServiceStack, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    short = stack.minter()(home.viewer.id, ttl=1.0)
    client = await connected(clients, "python", realtime.url, short)
    assert (await client.call("subscribe", {"topic": home.topic()}))["ok"]
    refused = await client.call("reauth", {"token": home.owner.token})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "forbidden"
    bad = await client.call("reauth", {"token": "garbage"})
    assert bad["ok"] is False
    assert bad["error"]["reason"] == "invalid"
    ack = await client.call("reauth", {"token": home.viewer.token})
    assert ack["ok"] is True
    assert ack["expires_at"] > time.time() + 60
    await asyncio.sleep(1.5)  # past the first token's expiry: the session must still be there
    await home.publish({"value": 7, "id": "a1-1"})
    await client.wait_message(home.topic(), lambda m: m["payload"]["id"] == "a1-1")
    assert client.connected
    assert not client.received("disconnect")


async def test_logging_out_everywhere_disconnects_the_users_sockets(
    stack: ServiceStack, realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    client = await connected(clients, "python", realtime.url, home.viewer.token)
    assert (await client.call("subscribe", {"topic": home.topic()}))["ok"]
    response = await asyncio.to_thread(
        stack.auth_http.post, "/auth/logout-everywhere", headers=home.viewer.headers
    )
    assert response.status_code == 204, response.text
    await client.wait_for(lambda: client.received("disconnect"), timeout=2.0)
    assert client.received("revoked") == [{"topic": home.topic(), "reason": "revoked"}]
    again = await clients("python", realtime.url).connect(home.viewer.token)
    assert again == {"message": "unauthorized", "data": {"reason": "revoked"}}


async def test_health_readiness_and_metrics(
    realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    client = await connected(clients, "python", realtime.url, home.viewer.token)
    assert (await client.call("subscribe", {"topic": home.topic()}))["ok"]
    await home.publish({"value": 1, "id": "h1-1"})
    await client.wait_message(home.topic(), lambda m: m["payload"]["id"] == "h1-1")
    async with httpx.AsyncClient(base_url=realtime.url) as http:
        assert (await http.get("/healthz")).json()["service"] == "realtime"
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        metrics = (await http.get("/metrics")).text

    def value(name: str) -> float:
        line = next(x for x in metrics.splitlines() if x.startswith(name + " "))
        return float(line.split()[-1])

    assert value("hearth_realtime_connections") >= 1
    assert value("hearth_realtime_rooms") >= 1
    assert value("hearth_realtime_broker_subscriptions") == value("hearth_realtime_rooms")
    assert value("hearth_realtime_messages_delivered_total") >= 1


async def test_a_class_joining_one_room_at_once_all_succeed_with_one_registry_question(
    realtime: RunningApp, stack: ServiceStack, clients: ClientFactory, home: Home
) -> None:
    """The issue's classroom: sockets of one user subscribing to one room at once."""
    sockets = 40

    async def authorize_calls() -> float:
        async with httpx.AsyncClient(base_url=stack.registry.url) as http:
            text = (await http.get("/metrics")).text
        prefix = (
            'hearth_http_requests_total{method="POST",route="/registry/authorize",status="200"}'
        )
        return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(prefix))

    class_ = [
        await connected(clients, "python", realtime.url, home.viewer.token) for _ in range(sockets)
    ]
    before = await authorize_calls()
    acks = await asyncio.gather(
        *(client.call("subscribe", {"topic": home.topic()}) for client in class_)
    )
    assert [ack["ok"] for ack in acks] == [True] * sockets  # never `unavailable`
    assert await authorize_calls() - before == 1  # one question for the whole class
    # control: another room is another question
    assert (await class_[0].call("subscribe", {"topic": home.topic("humidity")}))["ok"]
    assert await authorize_calls() - before == 2


async def stalled_socket(url: str, token: str, topic: str) -> Any:
    """A raw Engine.IO websocket in ``topic``'s room that then reads nothing until told.

    Its receive buffer is fixed small, so the server's writer soon gets stuck on it.
    """
    from websockets.asyncio.client import connect

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)
    sock.setblocking(False)
    host, port = url.removeprefix("http://").split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await connect(
        f"ws://{host}:{port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
        max_size=None,
        compression=None,
    )
    assert str(await ws.recv()).startswith("0")  # engine.io open
    await ws.send("40" + json.dumps({"token": token}))
    assert str(await ws.recv()).startswith("40")  # connected
    await ws.send("421" + json.dumps(["subscribe", {"topic": topic}]))
    while not str(frame := await ws.recv()).startswith("431"):  # the ack (id 1)
        pass
    assert json.loads(str(frame)[3:])[0]["ok"] is True
    return ws


async def test_a_socket_that_stops_reading_gets_latest_values_and_stalls_no_one(
    realtime: RunningApp, clients: ClientFactory, home: Home
) -> None:
    topic, count, big = home.topic(), 150, "x" * 60_000
    reader = await connected(clients, "python", realtime.url, home.viewer.token)
    assert (await reader.call("subscribe", {"topic": topic}))["ok"]
    stalled = await stalled_socket(realtime.url, home.viewer.token, topic)
    for n in range(count):  # about 9 MB: far more than the socket buffers hold
        await home.publish({"n": n, "pad": big})
    # The intake goes on: the socket that reads gets every message, in order.
    await reader.wait_for(lambda: len(reader.messages(topic)) >= count, timeout=30)
    assert [m["payload"]["n"] for m in reader.messages(topic)] == list(range(count))
    assert not any("conflated" in m for m in reader.messages(topic))  # it kept up
    # The stalled one reads again: values it could not take were replaced by newer ones,
    # announced with `conflated`, and the last value is there.
    items: list[dict[str, Any]] = []
    while not items or items[-1]["payload"]["n"] != count - 1:
        frame = str(await asyncio.wait_for(stalled.recv(), 30))
        if frame.startswith("42"):
            event, data = json.loads(frame[2:])
            items.extend([data] if event == "message" else data)
    numbers = [item["payload"]["n"] for item in items]
    assert numbers == sorted(numbers)  # in order, never twice
    conflated = sum(item.get("conflated", 0) for item in items)
    assert conflated > 0
    assert len(numbers) + conflated == count  # every value delivered or counted as replaced
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{realtime.url}/metrics")).text
    line = next(x for x in metrics.splitlines() if x.startswith("hearth_realtime_messages_conf"))
    assert float(line.split()[-1]) >= conflated
    await stalled.close()
