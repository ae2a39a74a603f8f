"""Realtime's pieces without a network: payload decoding, rooms, the authoriser's cache."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from hearth.common.mqtt import MAX_SUBSCRIPTION_ID
from hearth.common.tokens import Caller
from hearth.realtime.authorizer import RegistryAuthorizer, RegistryUnavailable
from hearth.realtime.cli import main as cli_main
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.errors import REGISTRY_REASON_CODES
from hearth.realtime.payloads import decode_payload
from hearth.realtime.rooms import Rooms

USER = "00000000-0000-4000-8000-000000000001"


def caller(jti: str = "t1", user_id: str = USER) -> Caller:
    return Caller(
        user_id=user_id,
        roles=frozenset(),
        scopes=frozenset({"read", "control"}),
        homes=None,
        token_id=jti,
        issued_at=time.time(),
        expires_at=time.time() + 900,
        token=f"token-{jti}",
    )


# --------------------------------------------------------------------------- payloads


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"21.5", 21.5),
        (b"true", True),
        (b'{"value": 1, "ts": 2}', {"value": 1, "ts": 2}),
        (b'"quoted"', "quoted"),
        (b"online", "online"),
        (b"NaN", "NaN"),  # not JSON a browser could parse: stays text
        (b"", ""),
        (b"\xff\xfe", "\ufffd\ufffd"),
        (None, ""),
        (7, 7),
    ],
)
def test_payloads_are_json_values_else_text(raw: Any, decoded: Any) -> None:
    assert decode_payload(raw) == decoded


# --------------------------------------------------------------------------- rooms


def test_rooms_get_distinct_identifiers_never_reused_at_once() -> None:
    rooms = Rooms(max_values=2)
    a, b = rooms.create("hearth/h/#", "h"), rooms.create("hearth/h/d/status", "h")
    assert (a.identifier, b.identifier) == (1, 2)
    assert rooms.by_identifier(2) is b
    rooms.remove(a)
    c = rooms.create("hearth/h/+/status", "h")
    assert c.identifier == 3  # counting on: a late message for room 1 never reaches c
    assert rooms.by_identifier(1) is None
    assert {r.name for r in rooms} == {"hearth/h/d/status", "hearth/h/+/status"}
    with pytest.raises(ValueError, match="exists"):
        rooms.create("hearth/h/d/status", "h")


def test_identifiers_wrap_around_and_skip_those_in_use() -> None:
    rooms = Rooms()
    rooms._next_id = MAX_SUBSCRIPTION_ID
    last = rooms.create("hearth/h/a/status", "h")
    first = rooms.create("hearth/h/b/status", "h")
    assert (last.identifier, first.identifier) == (MAX_SUBSCRIPTION_ID, 1)


def test_a_room_keeps_the_last_value_per_topic_within_its_bound() -> None:
    room = Rooms(max_values=2).create("hearth/h/#", "h")
    room.remember("hearth/h/d/telemetry/a", 1, "t1")
    room.remember("hearth/h/d/telemetry/b", 2, "t2")
    room.remember("hearth/h/d/telemetry/a", 3, "t3")  # updates a: b is now the oldest
    room.remember("hearth/h/d/telemetry/c", 4, "t4")  # over the bound: b goes
    assert [(v.topic[-1], v.payload) for v in room.last_values()] == [("a", 3), ("c", 4)]
    room.remember("hearth/h/d/telemetry/a", "", "t5")  # a cleared retained message
    assert [v.as_dict() for v in room.last_values()] == [
        {"topic": "hearth/h/d/telemetry/c", "payload": 4, "ts": "t4"}
    ]


# --------------------------------------------------------------------------- authoriser


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


def authorizer(registry: FakeRegistry, clock: Clock | None = None) -> RegistryAuthorizer:
    return RegistryAuthorizer(
        "http://registry.test",
        transport=httpx.MockTransport(registry),
        clock=clock or Clock(),
    )


async def test_answers_are_cached_per_token_and_target_for_their_ttl() -> None:
    registry, clock = FakeRegistry(), Clock()
    async with authorizer(registry, clock) as auth:
        topic = "hearth/h/d/telemetry/t"
        assert (await auth.may_read(caller(), topic)).allowed
        assert (await auth.may_read(caller(), topic)).allowed
        assert len(registry.requests) == 1
        assert registry.requests[0] == {
            "body": {"action": "read", "topic": topic},
            "auth": "Bearer token-t1",
        }
        await auth.may_read(caller("t2"), topic)  # another token asks for itself
        await auth.may_read(caller(), "hearth/h/#")
        assert registry.requests[-1]["body"] == {"action": "read", "filter": "hearth/h/#"}
        assert len(registry.requests) == 3
        clock.now += 5.01
        await auth.may_read(caller(), topic)
        assert len(registry.requests) == 4


async def test_denials_are_cached_too_and_ttl_zero_is_not_cached() -> None:
    registry = FakeRegistry({"allowed": False, "reason": "not_found", "role": None, "ttl": 5})
    async with authorizer(registry) as auth:
        for _ in range(2):
            decision = await auth.may_read(caller(), "hearth/h/d/status")
            assert (decision.allowed, decision.reason) == (False, "not_found")
        assert len(registry.requests) == 1
        registry.answer = {"allowed": True, "ttl": 0}
        await auth.may_read(caller(), "hearth/h/x/status")
        await auth.may_read(caller(), "hearth/h/x/status")
        assert len(registry.requests) == 3


async def test_forgetting_a_home_or_a_user_drops_their_answers() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        await auth.may_read(caller(), "hearth/h/d/status")
        await auth.may_read(caller(), "hearth/other/d/status")
        auth.forget_home("h")
        assert len(auth) == 1
        await auth.may_read(caller(), "hearth/h/d/status")
        assert len(registry.requests) == 3
        auth.forget_user(USER)
        assert len(auth) == 0


async def test_an_answer_in_flight_when_its_home_changes_is_not_cached() -> None:
    registry = FakeRegistry()
    async with authorizer(registry) as auth:
        registry.during = lambda: auth.forget_home("h")
        assert (await auth.may_read(caller(), "hearth/h/d/status")).allowed
        registry.during = None
        await auth.may_read(caller(), "hearth/h/d/status")
        assert len(registry.requests) == 2


async def test_registry_failures_are_unavailable_and_a_refused_token_unauthorized() -> None:
    async with authorizer(FakeRegistry(status=401)) as auth:
        decision = await auth.may_read(caller(), "hearth/h/d/status")
        assert (decision.allowed, decision.reason) == (False, "unauthorized")
    async with authorizer(FakeRegistry(status=503)) as auth:
        with pytest.raises(RegistryUnavailable):
            await auth.may_read(caller(), "hearth/h/d/status")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    broken = RegistryAuthorizer("http://registry.test", transport=httpx.MockTransport(refuse))
    async with broken:
        with pytest.raises(RegistryUnavailable, match="ConnectError"):
            await broken.may_read(caller(), "hearth/h/d/status")


def test_every_registry_denial_reason_has_an_ack_code() -> None:
    reasons = {
        "invalid",
        "not_found",
        "role",
        "scope",
        "token_homes",
        "not_command",
        "filter_outside_home",
        "filter_read_only",
    }
    assert reasons <= set(REGISTRY_REASON_CODES)
    assert set(REGISTRY_REASON_CODES.values()) <= {
        "unauthorized",
        "forbidden",
        "not_found",
        "invalid",
    }


# --------------------------------------------------------------------------- settings, cli


def test_settings_defaults_and_checks(tmp_path: Any) -> None:
    settings = RealtimeSettings(env="test", secrets_file=tmp_path / "none.env")
    assert settings.service == "realtime"
    assert settings.mqtt_username == "svc-realtime"
    assert settings.registry_url == "http://127.0.0.1:8102"
    trailing = RealtimeSettings(
        env="test", secrets_file=tmp_path / "none.env", registry_url="http://r:1/"
    )
    assert trailing.registry_url == "http://r:1"
    with pytest.raises(ValueError, match="http"):
        RealtimeSettings(env="test", secrets_file=tmp_path / "none.env", registry_url="ftp://x")


def test_cli_serves_and_has_no_migrate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    assert "serve" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["migrate"])  # no database, so no such command
    assert exit_info.value.code == 2
