"""docs/topics.md stays true: every example in it parses with hearth.common."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hearth.common.messages import Ack, Command, RegistryEvent, UserMark, parse_state, parse_status
from hearth.common.telemetry import RejectReason, parse_telemetry
from hearth.common.topics import Kind, parse_topic

DOC = Path(__file__).resolve().parents[3] / "docs" / "topics.md"
NOW = datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _block_after(doc: str, marker: str, lang: str = "") -> str:
    start = doc.index(marker)
    fence = doc.index(f"```{lang}\n", start) + len(lang) + 4
    return doc[fence : doc.index("```", fence)]


def test_telemetry_examples_parse(doc: str) -> None:
    lines = _block_after(doc, "Examples:").strip().splitlines()
    assert len(lines) >= 5
    for line in lines:
        assert parse_telemetry(line.encode(), now=NOW).value in (21.5, 0.0, 1.0)


def test_command_ack_and_status_examples_parse(doc: str) -> None:
    command = Command.from_bytes(_block_after(doc, "## Commands", "json"))
    assert command.expires_at is not None
    acks = _block_after(doc, "## Acks", "json").strip().splitlines()
    assert {Ack.from_bytes(line).id for line in acks} == {command.id}
    statuses = _block_after(doc, "## Status (presence)", "json").strip().splitlines()
    assert [parse_status(line).reason for line in statuses] == [
        "connected",
        "will",
        "disconnect",
        "silent",
    ]


def test_mosquitto_pub_examples_use_valid_topics_and_payloads(doc: str) -> None:
    section = doc[doc.index("## Try it by hand") : doc.index("## Subscribing")]
    commands = [
        shlex.split(c.replace("\\\n", " "))
        for c in re.findall(r"^mosquitto_pub .*?(?<!\\)$", section, re.MULTILINE | re.DOTALL)
    ]
    assert len(commands) >= 6
    for argv in commands:
        topic = parse_topic(argv[argv.index("-t") + 1])
        payload = argv[argv.index("-m") + 1].encode()
        if topic.kind is Kind.TELEMETRY:
            assert parse_telemetry(payload, now=NOW).value in (21.5, 21.7, 1.0)
        elif topic.kind is Kind.STATE:
            assert parse_state(payload).value is True
        elif topic.kind is Kind.STATUS:
            assert parse_status(payload).state == "online"
        else:
            assert Ack.from_bytes(payload).outcome == "done"
        assert ("-r" in argv) is (topic.kind is not Kind.ACK)


def test_system_bus_examples_parse(doc: str) -> None:
    assert UserMark.from_bytes(b'{"not_before": 1795255200123, "disabled": false}')
    row = next(line for line in doc.splitlines() if line.startswith("| `hearth-sys/registry"))
    example = re.search(r"`(\{.*\})`", row)
    assert example is not None
    event = example.group(1).replace('"ts": "..."', '"ts": "2026-11-21T10:00:00Z"')
    assert RegistryEvent.from_bytes(event).device == "esp-1"


def test_every_reject_reason_is_documented(doc: str) -> None:
    table = doc[doc.index("### Rejections") : doc.index("## State")]
    for reason in RejectReason:
        assert f"| `{reason.value}` |" in table
