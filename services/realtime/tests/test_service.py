"""RealtimeService with a fake Socket.IO server, a fake broker and a fake registry.

The live tests show the behaviour end to end; these pin down races and routing that a
live run cannot force: a socket leaving while its authorisation is in flight, messages
routed by subscription identifier, the last member's leave unsubscribing, a burst sent
while the socket is backlogged coalescing into one ``messages`` event, a socket that
cannot keep up getting the latest value of each topic (conflation), a slow socket's
overflow. The fake server is also the sockets' send queues, their depth set by the test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import TokenVerifier
from hearth.realtime.metrics import RealtimeMetrics
from hearth.realtime.outbox import Outbox
from hearth.realtime.service import RealtimeService
from hearth.testing.tokens import TokenMinter


class FakeSio:
    """A Socket.IO server and its sockets' send queues: writes recorded, depth set by tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, str | None, str | None]] = []
        self.rooms: dict[str, set[str]] = {}
        self.disconnected: list[str] = []
        self.queued: dict[str, int] = {}  # packets "waiting" on a socket's queue (its backlog)

    async def emit(
        self, event: str, data: Any = None, to: str | None = None, room: str | None = None
    ) -> None:
        self.sent.append((event, data, to, room))

    def write(self, sid: str, event: str, data: Any) -> bool:
        self.sent.append((event, data, sid, None))
        return sid not in self.disconnected

    def depth(self, sid: str) -> int:
        return self.queued.get(sid, 0)

    def to(self, sid: str) -> list[tuple[str, Any]]:
        """The ``(event, data)`` emitted to socket ``sid``, in order."""
        return [(event, data) for event, data, to, _ in self.sent if to == sid]

    def payloads(self, sid: str) -> list[tuple[str, Any]]:
        """``(room, payload)`` of every message to ``sid``, bursts flattened, in order."""
        items: list[Any] = []
        for event, data in self.to(sid):
            if event == "message":
                items.append(data)
            elif event == "messages":
                items.extend(data)
        return [(item["room"], item["payload"]) for item in items]

    async def enter_room(self, sid: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    async def leave_room(self, sid: str, room: str) -> None:
        self.rooms.get(room, set()).discard(sid)

    async def disconnect(self, sid: str) -> None:
        self.disconnected.append(sid)


class FakeBroker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None]] = []
        self.held: dict[str, asyncio.Event] = {}  # a filter's SUBACK waits for its event

    async def subscribe(
        self, topic_filter: str, qos: int = 1, *, identifier: int | None = None
    ) -> None:
        self.calls.append(("subscribe", topic_filter, identifier))
        gate = self.held.get(topic_filter)
        if gate is not None:
            await gate.wait()

    async def unsubscribe(self, topic_filter: str) -> None:
        self.calls.append(("unsubscribe", topic_filter, None))


def make_service(
    token_verifier: TokenVerifier, handler: Any, **options: Any
) -> tuple[RealtimeService, FakeSio, FakeBroker]:
    sio, broker = FakeSio(), FakeBroker()
    authorizer = RegistryClient("http://registry.test", transport=httpx.MockTransport(handler))
    service = RealtimeService(
        sio,
        sio,
        broker,
        token_verifier,
        authorizer,
        RealtimeMetrics(CollectorRegistry()),
        **options,
    )
    return service, sio, broker


def total(counter: Counter) -> float:
    """The value of an unlabelled counter."""
    return next(s.value for s in counter.collect()[0].samples if s.name.endswith("_total"))


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """Poll ``predicate`` (yielding to the loop) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)
    return value


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
    await until(lambda: len(sio.payloads("a")) == 3 and len(sio.payloads("b")) == 2)
    assert sio.payloads("a") == [(narrow, 21.5), (wide, 21.5), (wide, 22)]
    assert sio.payloads("b") == [(wide, 21.5), (wide, 22)]
    await asyncio.sleep(0.02)  # nothing more comes (the 99 of room 7 is dropped)
    assert len(sio.payloads("a")) == 3

    ack = await service.subscribe("b", {"topic": narrow})
    assert ack["last"] == [{"topic": narrow, "payload": 21.5, "ts": sio.to("b")[0][1]["ts"]}]
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


async def test_a_slow_suback_of_one_room_holds_up_only_that_rooms_joins(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, _sio, broker = make_service(token_verifier, allow)
    for sid in ("a", "b", "c"):
        await service.connect(sid, {"token": mint_token()})
    slow, other = "hearth/h/d/telemetry/t", "hearth/h/e/status"
    broker.held[slow] = asyncio.Event()
    first = asyncio.create_task(service.subscribe("a", {"topic": slow}))
    await until(lambda: ("subscribe", slow, 1) in broker.calls)  # its SUBACK is outstanding
    second = asyncio.create_task(service.subscribe("c", {"topic": slow}))  # the same room
    # Another room's join goes through while the slow room's SUBACK is still awaited.
    ack = await asyncio.wait_for(service.subscribe("b", {"topic": other}), 5)
    assert ack == {"ok": True, "topic": other, "last": []}
    await asyncio.sleep(0.02)
    assert not first.done()
    assert not second.done()  # waits behind the first join of its own room
    broker.held[slow].set()
    assert (await first)["ok"] is True
    assert (await second)["ok"] is True
    assert broker.calls == [("subscribe", slow, 1), ("subscribe", other, 2)]  # one per room
    room = service.rooms.get(slow)
    assert room is not None
    assert room.members == {"a", "c"}
    await service.close()


async def test_a_burst_while_the_socket_is_backlogged_becomes_one_messages_event_in_order(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, sio, _broker = make_service(token_verifier, allow)
    await service.connect("a", {"token": mint_token()})
    await service.connect("b", {"token": mint_token()})  # not in the room: gets nothing
    topic = "hearth/h/d/telemetry/t"
    assert (await service.subscribe("a", {"topic": topic}))["ok"]

    await service.handle_mqtt(message(topic, b"0", [1]))
    assert sio.to("a") == [("message", sio.to("a")[0][1])]  # nothing waited: at once, alone
    sio.queued["a"] = 1  # that packet still waits for the socket's writer: backlogged
    for n in range(1, 6):
        await service.handle_mqtt(message(topic, str(n).encode(), [1]))
    assert len(sio.to("a")) == 1  # held back while backlogged...
    # ...and written as one burst within 5 ms of the oldest of it (the 5 s deadline only
    # guards against a hang), although the socket's queue still holds a packet.
    await until(lambda: len(sio.to("a")) == 2)
    (first, single), (second, burst) = sio.to("a")
    assert (first, single["payload"], single["room"]) == ("message", 0, topic)
    assert second == "messages"
    assert [item["payload"] for item in burst] == [1, 2, 3, 4, 5]
    assert all(item["room"] == topic and item["retained"] is False for item in burst)

    sio.queued["a"] = 0  # the backlog clears: the next message goes out alone again
    await service.handle_mqtt(message(topic, b"6", [1]))
    assert sio.to("a")[2][0] == "message"
    assert sio.payloads("a") == [(topic, n) for n in range(7)]
    assert sio.to("b") == []
    assert total(service.metrics.bursts) == 1
    assert total(service.metrics.delivered) == 7
    await service.close()


class FakeQueue:
    """One socket's send queue for an Outbox: the writes, and a depth the test sets."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.depth = 0

    def write(self, event: str, data: Any) -> bool:
        self.sent.append((event, data))
        return True

    def outbox(self, **options: Any) -> Outbox:
        return Outbox(self.write, lambda: self.depth, **options)


async def test_waiting_items_of_a_room_left_are_dropped_and_the_rest_sent_in_order() -> None:
    queue = FakeQueue()
    outbox = queue.outbox(max_delay=0.001)
    outbox.put({"room": "r", "payload": 0})
    assert len(queue.sent) == 1
    queue.depth = 1
    for n in range(1, 4):
        outbox.put({"room": "r", "payload": n})
    outbox.put({"room": "gone", "payload": "x"})
    assert outbox.discard("gone") == 1  # the socket left that room before it was sent
    assert len(outbox) == 4  # one on the queue, three waiting
    await until(lambda: len(queue.sent) == 2)
    assert queue.sent[1] == ("messages", [{"room": "r", "payload": n} for n in (1, 2, 3)])
    queue.depth = 0
    assert len(outbox) == 0
    assert not outbox.backlogged
    outbox.close()


async def test_a_socket_whose_backlog_overflows_is_disconnected(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, sio, broker = make_service(token_verifier, allow, max_backlog=3)
    await service.connect("a", {"token": mint_token()})
    await service.connect("b", {"token": mint_token()})
    topic = "hearth/h/d/telemetry/t"
    for sid in ("a", "b"):
        assert (await service.subscribe(sid, {"topic": topic}))["ok"]
    sio.queued.update(a=1, b=1)  # one packet waits on each socket's queue
    for n in range(2):
        await service.handle_mqtt(message(topic, str(n).encode(), [1]))
    assert service.session("a") is not None
    await service.handle_mqtt(message(topic, b"2", [1]))  # beyond 3 undelivered
    await until(lambda: len(sio.disconnected) == 2, timeout=1)  # both are held, both overflow
    assert sorted(sio.disconnected) == ["a", "b"]
    assert service.session("a") is None
    assert total(service.metrics.slow_disconnects) == 2
    assert broker.calls[-1] == ("unsubscribe", topic, None)  # the room emptied
    await service.close()


async def test_a_socket_that_cannot_keep_up_gets_the_latest_value_of_each_topic() -> None:
    queue = FakeQueue()
    conflated: list[None] = []

    def item(topic: str, n: int) -> dict[str, Any]:
        return {"room": "r", "topic": topic, "payload": n}

    outbox = queue.outbox(max_delay=0.001, capacity=5, on_conflated=lambda: conflated.append(None))
    outbox.put(item("a", 0))  # written at once
    queue.depth = 2  # two packets wait for the socket's writer: the limit
    for n in range(1, 100):  # 99 values of a, then one of b: conflated
        outbox.put(item("a", n))
    outbox.put(item("b", 0))
    assert len(outbox) == 4  # two on the queue, one waiting per topic
    assert outbox.conflated == 98
    assert len(conflated) == 98
    outbox.put(item("c", 0))  # a new topic still fits
    await asyncio.sleep(0.02)
    assert len(queue.sent) == 1  # nothing more is written while the queue stays at the limit
    queue.depth = 1
    await until(lambda: len(queue.sent) == 2)
    assert queue.sent[1] == (
        "messages",
        [{**item("a", 99), "conflated": 98}, item("b", 0), item("c", 0)],
    )
    assert item("a", 99) == {"room": "r", "topic": "a", "payload": 99}  # shared: unchanged
    outbox.close()


async def test_a_socket_that_keeps_up_gets_every_value() -> None:
    queue = FakeQueue()
    outbox = queue.outbox(max_delay=0.001)
    outbox.put({"room": "r", "topic": "a", "payload": 0})
    queue.depth = 1  # backlogged, below the limit
    for n in range(1, 5):
        outbox.put({"room": "r", "topic": "a", "payload": n})
    assert outbox.conflated == 0
    await until(lambda: len(queue.sent) == 2)
    assert [i["payload"] for i in queue.sent[1][1]] == [1, 2, 3, 4]
    outbox.close()


async def test_distinct_topics_beyond_the_capacity_overflow_even_at_the_limit() -> None:
    queue = FakeQueue()
    overflows: list[int] = []
    outbox = queue.outbox(max_delay=60.0, capacity=4, on_overflow=overflows.append)
    outbox.put({"room": "r", "topic": "t0", "payload": 0})
    queue.depth = 2
    assert outbox.put({"room": "r", "topic": "t1", "payload": 0})
    assert outbox.put({"room": "r", "topic": "t1", "payload": 1})  # conflated: still fits
    assert outbox.put({"room": "r", "topic": "t2", "payload": 0})
    assert not outbox.put({"room": "r", "topic": "t3", "payload": 0})
    assert overflows == [4]
    assert outbox.closed


async def test_messages_that_arrive_together_go_to_each_member_as_one_event_per_room(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, sio, _broker = make_service(token_verifier, allow)
    for sid in ("a", "b", "c"):
        await service.connect(sid, {"token": mint_token()})
    room, other = "hearth/h/d/telemetry/t", "hearth/h/e/telemetry/t"
    for sid, topic in [("a", room), ("b", room), ("a", other)]:
        assert (await service.subscribe(sid, {"topic": topic}))["ok"]
    # The broker connection dispatches what arrived together, then calls caught_up.
    for n in range(3):
        await service.router.dispatch(message(room, str(n).encode(), [1]))
    await service.router.dispatch(message(other, b"9", [2]))
    assert sio.to("a") == []  # gathered, nothing written yet
    assert (await service.subscribe("c", {"topic": room}))["ok"]  # the batch goes first
    await service.router.dispatch(message(room, b"3", [1]))
    service.router.caught_up()
    (event_a, burst_a), (event_o, single_o), (event_a3, single_a3) = sio.to("a")
    assert (event_a, [i["payload"] for i in burst_a]) == ("messages", [0, 1, 2])
    assert sio.to("b")[0] == (event_a, burst_a)  # the very same object: encoded once
    assert (event_o, single_o["room"], single_o["payload"]) == ("message", other, 9)
    assert (event_a3, single_a3["payload"]) == ("message", 3)
    assert sio.payloads("c") == [(room, 3)]  # joined after 0-2: only what came after
    assert total(service.metrics.delivered) == 3 + 3 + 1 + 1 + 1 + 1
    await service.close()


async def test_a_socket_that_leaves_gets_nothing_of_what_its_room_gathered(
    token_verifier: TokenVerifier, mint_token: TokenMinter
) -> None:
    service, sio, _broker = make_service(token_verifier, allow)
    for sid in ("a", "b"):
        await service.connect(sid, {"token": mint_token()})
    room = "hearth/h/d/telemetry/t"
    for sid in ("a", "b"):
        assert (await service.subscribe(sid, {"topic": room}))["ok"]
    await service.router.dispatch(message(room, b"1", [1]))
    assert (await service.unsubscribe("a", {"topic": room})) == {"ok": True}
    service.router.caught_up()
    assert sio.payloads("b") == [(room, 1)]  # positive control: the member gets it
    assert sio.payloads("a") == []
    await service.close()
