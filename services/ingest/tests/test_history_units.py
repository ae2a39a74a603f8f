"""The history API's pure parts: CSV lines, the reject log, the system bus, time ranges."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hearth.common.messages import RegistryEvent
from hearth.common.registry_client import RegistryClient
from hearth.common.tokens import Caller, RevocationMarks
from hearth.common.topics import parse_filter
from hearth.ingest.bus import SystemBus
from hearth.ingest.errors import InvalidImport, InvalidQuery, RangeTooLarge
from hearth.ingest.history import check_range
from hearth.ingest.homes import HomeZones
from hearth.ingest.imports import ImportLine, LineError, read_lines
from hearth.ingest.rejects import RejectLog, topic_owner

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
AGE = timedelta(days=3660)


def read(text: str) -> list[ImportLine | LineError]:
    return list(read_lines(text.splitlines(), now=NOW, max_age=AGE))


def test_import_lines_are_read_or_refused_with_their_number() -> None:
    out = read(
        "value,ts,device,metric\n"  # any column order
        "21.5,2020-01-01T00:00:00Z,node,temperature\n"
        "true,1577836800,door,open\n"
        "\n"
        "x,2020-01-01T00:00:00Z,node,temperature\n"
        "1,2020-01-01T00:00:00Z,Node,temperature\n"
        "1,2099-01-01T00:00:00Z,node,temperature\n"
        "1,1990-01-01T00:00:00Z,node,temperature\n"
        '{"value": 1},2020-01-01T00:00:00Z,node,temperature\n'
        "1,2020-01-01T00:00:00,node,temperature\n"
        "1,2,3\n"
        "NaN,2020-01-01T00:00:00Z,node,temperature\n"
    )
    assert out[:2] == [
        ImportLine(2, "node", "temperature", datetime(2020, 1, 1, tzinfo=UTC), 21.5, False),
        ImportLine(3, "door", "open", datetime(2020, 1, 1, tzinfo=UTC), 1.0, True),
    ]
    errors = out[2:]
    assert all(isinstance(e, LineError) for e in errors)
    assert [e.line for e in errors] == [5, 6, 7, 8, 9, 10, 11, 12]
    messages = [e.error for e in errors if isinstance(e, LineError)]
    assert messages[0].startswith("value:")
    assert "not a slug" in messages[1]
    assert "future" in messages[2]
    assert "older than 3660 days" in messages[3]
    assert messages[4] == "value: a number, true or false"
    assert messages[5].startswith("ts:")
    assert messages[6] == "3 fields, expected 4"
    assert messages[7].startswith("value:")


@pytest.mark.parametrize("text", ["", "device,metric,ts\n", "device,metric,ts,value,unit\n"])
def test_a_file_without_the_header_is_invalid(text: str) -> None:
    with pytest.raises(InvalidImport):
        read(text)
    assert read("device,metric,ts,value\n") == []  # positive control: the header alone


def test_ranges() -> None:
    check_range(NOW - timedelta(days=400), NOW, timedelta(days=400))
    with pytest.raises(RangeTooLarge):
        check_range(NOW - timedelta(days=401), NOW, timedelta(days=400))
    with pytest.raises(InvalidQuery):
        check_range(NOW, NOW, timedelta(days=1))


def test_reject_owner_from_the_topic() -> None:
    assert topic_owner("hearth/flat/node/telemetry/Temp") == ("flat", "node")
    assert topic_owner("hearth/flat/node/telemetry/temp/x") == ("flat", "node")
    assert topic_owner("hearth/Flat/node/telemetry/temp") == (None, None)
    assert topic_owner("other/flat/node") == (None, None)


def test_the_reject_log_writes_one_line_per_reason_per_device_per_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    reject_log = RejectLog(period=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="hearth.ingest.rejects"):
        for _ in range(5):
            reject_log.record("hearth/h/d1/telemetry/t", "not_a_number", "x")
        reject_log.record("hearth/h/d2/telemetry/t", "not_a_number", "x")  # another device
        reject_log.record("hearth/h/d1/telemetry/t", "too_large", "x")  # another reason
        assert reject_log.lines == 3
        now[0] = 61.0
        reject_log.record("hearth/h/d1/telemetry/t", "not_a_number", "x")
    assert reject_log.lines == 4
    last = caplog.records[-1]
    assert last.getMessage() == "telemetry rejected: not_a_number"
    assert (last.device, last.suppressed) == ("d1", 4)  # type: ignore[attr-defined]


def test_the_reject_log_forgets_the_oldest_keys() -> None:
    reject_log = RejectLog(max_keys=2, clock=lambda: 0.0)
    for device in ("a", "b", "c", "a"):
        reject_log.record(f"hearth/h/{device}/telemetry/t", "not_a_number", "")
    assert reject_log.lines == 4  # "a" was forgotten, so it is logged again


async def test_the_system_bus_drops_cached_answers() -> None:
    asked: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.content)
        return httpx.Response(200, json={"allowed": True, "role": "viewer", "ttl": 60})

    registry = RegistryClient("http://registry", transport=httpx.MockTransport(answer))
    zones = HomeZones("http://registry", transport=httpx.MockTransport(answer))
    marks = RevocationMarks()
    bus = SystemBus(registry, zones, marks)
    caller = Caller(
        user_id="0b1c2d3e-0000-4000-8000-000000000001",
        roles=frozenset(),
        scopes=frozenset({"read"}),
        homes=None,
        token_id="t1",
        issued_at=0.0,
        expires_at=1e12,
        token="x",
    )
    target = parse_filter("hearth/flat/node/telemetry/temp")
    await registry.may_read(caller, target)
    await registry.may_read(caller, target)
    assert len(asked) == 1  # cached
    event = RegistryEvent.model_validate(
        {
            "kind": "membership",
            "home": "flat",
            "action": "deleted",
            "user": caller.user_id,
            "ts": "2026-11-29T12:00:00Z",
        }
    )
    bus.apply("hearth-sys/registry/homes/flat", event.to_bytes())
    await registry.may_read(caller, target)
    assert len(asked) == 2  # asked again after the home's event
    bus.apply("hearth-sys/registry/homes/flat", b"not json")  # ignored, logged
    bus.apply(f"hearth-sys/auth/users/{caller.user_id}", b'{"not_before": 1, "disabled": true}')
    assert marks.get(caller.user_id) is not None
    await registry.may_read(caller, target)
    assert len(asked) == 3  # the user's answers were dropped with the mark
    assert bus.events == 1
