"""Realtime's pieces without a network: payload decoding, rooms, ack codes, settings, CLI."""

from __future__ import annotations

from typing import Any

import pytest

from hearth.common.authorization import DENY_REASONS
from hearth.common.mqtt import MAX_SUBSCRIPTION_ID
from hearth.common.topics import parse_filter
from hearth.realtime.cli import main as cli_main
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.errors import REGISTRY_REASON_CODES
from hearth.realtime.payloads import decode_payload
from hearth.realtime.rooms import RoomTable

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
    rooms = RoomTable(max_values=2)
    a, b = rooms.create(parse_filter("hearth/h/#")), rooms.create(parse_filter("hearth/h/d/status"))
    assert (a.identifier, b.identifier) == (1, 2)
    assert rooms.by_identifier(2) is b
    rooms.remove(a)
    c = rooms.create(parse_filter("hearth/h/+/status"))
    assert c.identifier == 3  # counting on: a late message for room 1 never reaches c
    assert rooms.by_identifier(1) is None
    assert {r.name for r in rooms} == {"hearth/h/d/status", "hearth/h/+/status"}
    with pytest.raises(ValueError, match="exists"):
        rooms.create(parse_filter("hearth/h/d/status"))


def test_identifiers_wrap_around_and_skip_those_in_use() -> None:
    rooms = RoomTable()
    rooms._next_id = MAX_SUBSCRIPTION_ID
    last = rooms.create(parse_filter("hearth/h/a/status"))
    first = rooms.create(parse_filter("hearth/h/b/status"))
    assert (last.identifier, first.identifier) == (MAX_SUBSCRIPTION_ID, 1)


def test_a_room_keeps_the_last_value_per_topic_within_its_bound() -> None:
    room = RoomTable(max_values=2).create(parse_filter("hearth/h/#"))
    room.remember("hearth/h/d/telemetry/a", 1, "t1")
    room.remember("hearth/h/d/telemetry/b", 2, "t2")
    room.remember("hearth/h/d/telemetry/a", 3, "t3")  # updates a: b is now the oldest
    room.remember("hearth/h/d/telemetry/c", 4, "t4")  # over the bound: b goes
    assert [(v.topic[-1], v.payload) for v in room.last_values()] == [("a", 3), ("c", 4)]
    room.remember("hearth/h/d/telemetry/a", "", "t5")  # a cleared retained message
    assert [v.as_dict() for v in room.last_values()] == [
        {"topic": "hearth/h/d/telemetry/c", "payload": 4, "ts": "t4"}
    ]


def test_every_registry_denial_reason_has_an_ack_code() -> None:
    reasons = set(DENY_REASONS)  # every reason of the registry's contract
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
    assert settings.mqtt_username == f"svc-realtime-{settings.replica}"
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
