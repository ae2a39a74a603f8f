"""RealtimeService with a fake Socket.IO server, a fake broker and a fake registry.

The live tests show the behaviour end to end; these pin down races and routing that a
live run cannot force: a socket leaving while its authorisation is in flight, messages
routed by subscription identifier, the last member's leave unsubscribing.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from hearth.common.tokens import TokenVerifier
from hearth.realtime.authorizer import RegistryAuthorizer
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.service import RealtimeService
from hearth.testing.tokens import TokenMinter


class FakeSio:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str | None, str | None]] = []
        self.rooms: dict[str, set[str]] = {}
        self.disconnected: list[str] = []

    async def emit(
        self, event: str, data: Any = None, to: str | None = None, room: str | None = None
    ) -> None:
        self.sent.append((event, data, to, room))

    async def enter_room(self, sid: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    async def leave_room(self, sid: str, room: str) -> None:
        self.rooms.get(room, set()).discard(sid)

    async def disconnect(self, sid: str) -> None:
        self.disconnected.append(sid)


class FakeBroker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None:
        self.calls.append(("subscribe", topic_filter, identifier))

    async def unsubscribe(self, topic_filter: str) -> None:
        self.calls.append(("unsubscribe", topic_filter, None))


def make_service(
    token_verifier: TokenVerifier, handler: Any
) -> tuple[RealtimeService, FakeSio, FakeBroker]:
    sio, broker = FakeSio(), FakeBroker()
    authorizer = RegistryAuthorizer("http://registry.test", transport=httpx.MockTransport(handler))
    service = RealtimeService(
        sio, broker, token_verifier, authorizer, RealtimeMetrics(CollectorRegistry())
    )
    return service, sio, broker


def allow(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"allowed": True, "role": "viewer", "ttl": 5})


def message(topic: str, payload: bytes, ids: list[int], retain: bool = False) -> Any:
    return SimpleNamespace(
        topic=topic,
        payload=payload,
        retain=retain,
        properties=SimpleNamespace(SubscriptionIdentifier=ids),
    )


async def test_a_socket_gone_while_its_authorisation_is_in_flight_joins_nothing(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        asked.set()
        await release.wait()
        return allow(request)

    service, _sio, broker = make_service(token_verifier, slow)
    await service.connect("a", {"token": mint_token()})
    pending = asyncio.create_task(service.subscribe("a", {"topic": "hearth/h/d/status"}))
    await asyncio.wait_for(asked.wait(), 10)  # the check is at the registry when the socket goes
    await service.disconnected("a")
    release.set()
    ack = await pending
    assert ack["ok"] is False
    assert ack["error"]["code"] == "unauthorized"
    assert len(service.rooms) == 0
    assert broker.calls == []
    await service.close()


async def test_messages_go_to_each_room_of_their_identifiers_and_the_last_leave_unsubscribes(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, sio, broker = make_service(token_verifier, allow)
    await service.connect("a", {"token": mint_token()})
    await service.connect("b", {"token": mint_token()})
    narrow, wide = "hearth/h/d/telemetry/t", "hearth/h/#"
    for sid, topic in [("a", narrow), ("a", wide), ("b", wide)]:
        assert (await service.subscribe(sid, {"topic": topic}))["ok"]
    assert broker.calls == [("subscribe", narrow, 1), ("subscribe", wide, 2)]

    await service.handle_mqtt(message(narrow, b"21.5", [1, 2]))
    await service.handle_mqtt(message(narrow, b"22", [2]))  # the second copy's identifier
    await service.handle_mqtt(message(narrow, b"99", [7]))  # a room already gone: dropped
    events = [(data["room"], data["payload"]) for event, data, _, _ in sio.sent]
    assert events == [(narrow, 21.5), (wide, 21.5), (wide, 22)]

    ack = await service.subscribe("b", {"topic": narrow})
    assert ack["last"] == [{"topic": narrow, "payload": 21.5, "ts": sio.sent[0][1]["ts"]}]
    assert (await service.unsubscribe("a", {"topic": narrow})) == {"ok": True}
    assert ("unsubscribe", narrow, None) not in broker.calls  # b is still in it
    await service.disconnected("b")
    assert broker.calls[-1] == ("unsubscribe", narrow, None)
    await service.disconnected("a")
    assert broker.calls[-1] == ("unsubscribe", wide, None)
    assert len(service.rooms) == 0
    await service.close()


async def test_an_unsubscribe_sent_during_a_subscribe_is_applied_after_it(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        asked.set()
        await release.wait()
        return allow(request)

    service, sio, broker = make_service(token_verifier, slow)
    await service.connect("a", {"token": mint_token()})
    topic = "hearth/h/d/status"
    # python-socketio runs each event in its own task: both are in flight at once.
    subscribing = asyncio.create_task(service.subscribe("a", {"topic": topic}))
    await asyncio.wait_for(asked.wait(), 10)  # the subscribe is at the registry, holding its turn
    unsubscribing = asyncio.create_task(service.unsubscribe("a", {"topic": topic}))
    await asyncio.sleep(0.05)
    assert not unsubscribing.done()  # waits for the subscribe the client sent first
    release.set()
    assert (await subscribing)["ok"] is True
    assert await unsubscribing == {"ok": True}
    session = service.session("a")
    assert session is not None
    assert session.rooms == set()
    assert len(service.rooms) == 0
    assert sio.rooms.get(topic, set()) == set()
    assert broker.calls == [("subscribe", topic, 1), ("unsubscribe", topic, None)]
    await service.close()
