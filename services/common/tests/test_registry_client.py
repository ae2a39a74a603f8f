"""RegistryClient: the registry's answers shared per user, token claims and target, single
flight, dropped on changes.

The registry is an ``httpx.MockTransport`` answering from a table (no network); its real
answers are the registry's own tests (services/registry/tests/test_authorize.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from hearth.common.authorization import DENY_REASONS, Action
from hearth.common.clock import utc_now
from hearth.common.messages import (
    PresenceState,
    RegistryAction,
    RegistryEvent,
    RegistryKind,
    Status,
    StatusReason,
)
from hearth.common.registry_client import RegistryClient, RegistryUnavailable
from hearth.common.tokens import Caller
from hearth.common.topics import parse_filter

USER = "00000000-0000-4000-8000-000000000001"


def caller(
    jti: str = "t1",
    user_id: str = USER,
    *,
    scopes: frozenset[str] = frozenset({"read", "control"}),
    homes: frozenset[str] | None = None,
) -> Caller:
    return Caller(
        user_id=user_id,
        roles=frozenset(),
        scopes=scopes,
        homes=homes,
        token_id=jti,
        issued_at=time.time(),
        expires_at=time.time() + 900,
        token=f"token-{jti}",
    )


class FakeRegistry:
    """A registry answering ``POST /registry/authorize`` from a table; counts requests."""

    def __init__(self, answer: dict[str, Any] | None = None, status: int = 200) -> None:
        self.answer = answer or {"allowed": True, "role": "viewer", "reason": None, "ttl": 5}
        self.status = status
        self.requests: list[dict[str, Any]] = []
        self.during: Any = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(
            {"body": json.loads(request.content), "auth": request.headers["authorization"]}
        )
        if self.during is not None:
            self.during()
        return httpx.Response(self.status, json=self.answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authorizer(registry: FakeRegistry, clock: Clock | None = None) -> RegistryClient:
    return RegistryClient(
        "http://registry.test",
        transport=httpx.MockTransport(registry),
        clock=clock or Clock(),
    )


async def test_answers_are_shared_per_user_claims_and_target_for_their_ttl() -> None:
    registry, clock = FakeRegistry(), Clock()
    async with authorizer(registry, clock) as auth:
        topic = "hearth/h/d/telemetry/t"
        assert (await auth.may_read(caller(), parse_filter(topic))).allowed
        assert (await auth.may_read(caller(), parse_filter(topic))).allowed
        assert len(registry.requests) == 1
        assert registry.requests[0] == {
            "body": {"action": "read", "topic": topic},
            "auth": "Bearer token-t1",
        }
        await auth.may_read(caller("t2"), parse_filter(topic))  # same user and claims: shared
        assert len(registry.requests) == 1
        await auth.may_read(caller(), parse_filter("hearth/h/#"))
        assert registry.requests[-1]["body"] == {"action": "read", "filter": "hearth/h/#"}
        assert len(registry.requests) == 2
        clock.now += 5.01
        await auth.may_read(caller(), parse_filter(topic))
        assert len(registry.requests) == 3


async def test_another_user_or_other_token_claims_are_asked_apart() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        await auth.may_read(caller(), topic)
        await auth.may_read(caller(user_id="00000000-0000-4000-8000-000000000002"), topic)
        await auth.may_read(caller("t2", scopes=frozenset({"read"})), topic)
        await auth.may_read(caller("t3", homes=frozenset({"h"})), topic)
        assert [r["auth"] for r in registry.requests] == [
            "Bearer token-t1",
            "Bearer token-t1",
            "Bearer token-t2",
            "Bearer token-t3",
        ]


class GatedRegistry(FakeRegistry):
    """A FakeRegistry whose answers wait until ``gate`` is set (questions stay in flight)."""

    def __init__(self, answer: dict[str, Any] | None = None, status: int = 200) -> None:
        super().__init__(answer, status)
        self.gate = asyncio.Event()
        self.arrived = asyncio.Event()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.arrived.set()
        await self.gate.wait()
        return self(request)


def gated(registry: GatedRegistry) -> RegistryClient:
    return RegistryClient("http://registry.test", transport=httpx.MockTransport(registry.handle))


async def test_a_burst_of_identical_questions_is_one_registry_call() -> None:
    registry = GatedRegistry()
    async with gated(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        asks = [asyncio.ensure_future(auth.may_read(caller(f"t{i}"), topic)) for i in range(500)]
        await asyncio.wait_for(registry.arrived.wait(), 10)
        registry.gate.set()
        decisions = await asyncio.wait_for(asyncio.gather(*asks), 10)
        assert all(d.allowed for d in decisions)
        assert len(registry.requests) == 1
        assert (auth.asked, auth.shared) == (1, 499)
        # control: a question about another target is asked
        await auth.may_read(caller(), parse_filter("hearth/h/other/status"))
        assert len(registry.requests) == 2


async def test_a_waiter_survives_the_first_askers_cancellation() -> None:
    registry = GatedRegistry()
    async with gated(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        first = asyncio.ensure_future(auth.may_read(caller("t1"), topic))
        await asyncio.wait_for(registry.arrived.wait(), 10)
        second = asyncio.ensure_future(auth.may_read(caller("t2"), topic))
        await asyncio.sleep(0)  # let the second join the flight
        first.cancel()
        registry.gate.set()
        assert (await asyncio.wait_for(second, 10)).allowed
        assert first.cancelled()
        assert len(registry.requests) == 1


async def test_an_outage_reaches_every_waiter_and_the_next_question_asks_again() -> None:
    registry = GatedRegistry(status=503)
    async with gated(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        asks = [asyncio.ensure_future(auth.may_read(caller(f"t{i}"), topic)) for i in range(3)]
        await asyncio.wait_for(registry.arrived.wait(), 10)
        registry.gate.set()
        results = await asyncio.gather(*asks, return_exceptions=True)
        assert all(isinstance(r, RegistryUnavailable) for r in results)
        assert len(registry.requests) == 1
        registry.status = 200
        assert (await auth.may_read(caller(), topic)).allowed
        assert len(registry.requests) == 2


async def test_a_refused_token_is_not_shared_with_a_waiter_holding_another() -> None:
    registry = GatedRegistry(status=401)
    async with gated(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        first = asyncio.ensure_future(auth.may_read(caller("t1"), topic))
        await asyncio.wait_for(registry.arrived.wait(), 10)
        same = asyncio.ensure_future(auth.may_read(caller("t1"), topic))
        other = asyncio.ensure_future(auth.may_read(caller("t2"), topic))
        await asyncio.sleep(0)
        registry.gate.set()
        assert (await first).reason == "unauthorized"
        assert (await same).reason == "unauthorized"  # the same token: shared
        assert (await other).reason == "unauthorized"  # asked again, with its own token
        assert [r["auth"] for r in registry.requests] == [
            "Bearer token-t1",
            "Bearer token-t2",
        ]


async def test_a_question_after_a_change_does_not_join_the_flight_before_it() -> None:
    registry = GatedRegistry()
    async with gated(registry) as auth:
        topic = parse_filter("hearth/h/d/status")
        before = asyncio.ensure_future(auth.may_read(caller(), topic))
        await asyncio.wait_for(registry.arrived.wait(), 10)
        auth.forget_home("h")
        after = asyncio.ensure_future(auth.may_read(caller(), topic))
        await asyncio.sleep(0)
        registry.gate.set()
        await asyncio.gather(before, after)
        assert len(registry.requests) == 2
        assert len(auth) == 1  # only the answer asked after the change is kept


async def test_denials_are_cached_too_and_ttl_zero_is_not_cached() -> None:
    registry = FakeRegistry({"allowed": False, "reason": "not_found", "role": None, "ttl": 5})
    async with authorizer(registry) as auth:
        for _ in range(2):
            decision = await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
            assert (decision.allowed, decision.reason) == (False, "not_found")
        assert len(registry.requests) == 1
        registry.answer = {"allowed": True, "ttl": 0}
        await auth.may_read(caller(), parse_filter("hearth/h/x/status"))
        await auth.may_read(caller(), parse_filter("hearth/h/x/status"))
        assert len(registry.requests) == 3


async def test_forgetting_a_home_or_a_user_drops_their_answers() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        await auth.may_read(caller(), parse_filter("hearth/other/d/status"))
        auth.forget_home("h")
        assert len(auth) == 1
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        assert len(registry.requests) == 3
        auth.forget_user(USER)
        assert len(auth) == 0


async def test_an_answer_in_flight_when_its_home_changes_is_not_cached() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        registry.during = lambda: auth.forget_home("h")
        assert (await auth.may_read(caller(), parse_filter("hearth/h/d/status"))).allowed
        registry.during = None
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        assert len(registry.requests) == 2


async def test_registry_failures_are_unavailable_and_a_refused_token_unauthorized() -> None:
    async with authorizer(FakeRegistry(status=401)) as auth:
        decision = await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        assert (decision.allowed, decision.reason) == (False, "unauthorized")
    async with authorizer(FakeRegistry(status=503)) as auth:
        with pytest.raises(RegistryUnavailable):
            await auth.may_read(caller(), parse_filter("hearth/h/d/status"))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broken = RegistryClient("http://registry.test", transport=httpx.MockTransport(refuse))
    async with broken:
        with pytest.raises(RegistryUnavailable, match="ConnectError"):
            await broken.may_read(caller(), parse_filter("hearth/h/d/status"))


async def test_a_registry_event_drops_its_homes_answers() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        await auth.may_read(caller(), parse_filter("hearth/other/d/status"))
        event = RegistryEvent(
            kind=RegistryKind.HOME,
            home="h",
            action=RegistryAction.UPDATED,
            ts=utc_now(),
        )
        auth.handle_event(event)
        assert len(auth) == 1
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        assert len(registry.requests) == 3


async def test_registry_events_from_the_bus_drop_their_homes_answers() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        malformed = SimpleNamespace(topic="hearth-sys/registry/homes/h", payload=b"{}")
        assert auth.on_registry_event(malformed) is None  # type: ignore[arg-type]
        assert len(auth) == 1
        event = RegistryEvent(
            kind=RegistryKind.HOME, home="h", action=RegistryAction.UPDATED, ts=utc_now()
        )
        message = SimpleNamespace(topic="hearth-sys/registry/homes/h", payload=event.to_bytes())
        assert auth.on_registry_event(message) == event  # type: ignore[arg-type]
        assert len(auth) == 0


async def test_a_presence_event_drops_nothing() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        presence = RegistryEvent(
            kind=RegistryKind.PRESENCE,
            home="h",
            action=RegistryAction.UPDATED,
            device="d",
            presence=Status(state=PresenceState.OFFLINE, reason=StatusReason.WILL),
            ts=utc_now(),
        )
        message = SimpleNamespace(topic="hearth-sys/registry/homes/h", payload=presence.to_bytes())
        assert auth.on_registry_event(message) is None  # type: ignore[arg-type]
        auth.handle_event(presence)
        assert len(auth) == 1  # a device going offline changes nobody's rights
        changed = presence.model_copy(update={"kind": RegistryKind.DEVICE, "presence": None})
        auth.handle_event(changed)  # the control: a device event does drop them
        assert len(auth) == 0


async def test_every_deny_reason_of_the_contract_is_read_back() -> None:
    for reason in DENY_REASONS:
        registry = FakeRegistry({"allowed": False, "reason": reason, "ttl": 5})
        async with authorizer(registry) as auth:
            decision = await auth.may_read(caller(), parse_filter("hearth/h/d/status"))
        assert (decision.allowed, decision.reason) == (False, reason)


async def test_an_unreadable_answer_is_an_outage_not_a_denial() -> None:
    async with authorizer(FakeRegistry({"allowed": "perhaps", "ttl": 5})) as auth:
        with pytest.raises(RegistryUnavailable, match="unreadable"):
            await auth.may_read(caller(), parse_filter("hearth/h/d/status"))


async def test_writes_and_homes_are_asked_and_cached_apart_from_reads() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        topic = parse_filter("hearth/h/d/command/relay")
        await auth.may_read(caller(), topic)
        await auth.authorize(caller(), Action.WRITE, topic)
        await auth.authorize_home(caller(), Action.MANAGE, "h")
        await auth.authorize_home(caller(), Action.MANAGE, "h")
        assert [r["body"] for r in registry.requests] == [
            {"action": "read", "topic": "hearth/h/d/command/relay"},
            {"action": "write", "topic": "hearth/h/d/command/relay"},
            {"action": "manage", "home": "h"},
        ]
