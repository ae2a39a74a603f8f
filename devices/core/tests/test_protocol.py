"""The command rules, the back-off and the outbox, on CPython."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from hearth.common.messages import Ack
from hearth_device.outbox import Outbox
from hearth_device.protocol import messages
from hearth_device.protocol.backoff import Backoff
from hearth_device.protocol.commands import CommandHandler

USER = "6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d"
NOW = 1795255200000
PROPERTIES = [
    {"name": "light", "kind": "boolean"},
    {"name": "gas-threshold", "kind": "number", "min": 100, "max": 5000},
]


def command(value: object, expires_at: int | None = None, command_id: str | None = None) -> bytes:
    body = {
        "id": command_id or str(uuid.uuid4()),
        "value": value,
        "issued_at": messages.format_timestamp(NOW - 1000),
        "expires_at": None if expires_at is None else messages.format_timestamp(expires_at),
        "by": USER,
    }
    return json.dumps(body).encode()


class Hardware:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def act(self, prop: str, value: object) -> object:
        if prop == "gas-threshold" and value == 4242:
            raise RuntimeError("the relay board did not answer")
        self.calls.append((prop, value))
        return value


@pytest.fixture
def hardware() -> Hardware:
    return Hardware()


def test_a_valid_command_acts_then_acks_done(hardware: Hardware) -> None:
    handler = CommandHandler(PROPERTIES, hardware.act)
    outcome = handler.handle("light", command(True, NOW + 30_000), NOW)
    assert (outcome.outcome, outcome.changed, outcome.value) == ("done", True, True)
    assert Ack.from_bytes(outcome.ack or b"").outcome == "done"
    assert hardware.calls == [("light", True)]


def test_duplicates_are_acked_again_and_not_repeated(hardware: Hardware) -> None:
    handler = CommandHandler(PROPERTIES, hardware.act)
    payload = command(True)
    first = handler.handle("light", payload, NOW)
    again = handler.handle("light", payload, NOW)
    assert again.ack == first.ack
    assert not again.changed
    assert hardware.calls == [("light", True)]


@pytest.mark.parametrize(
    ("prop", "payload", "now", "reason"),
    [
        ("light", command(5), NOW, "value must be true or false"),
        ("gas-threshold", command(50_000), NOW, "value out of range"),
        ("heater", command(True), NOW, "unknown property heater"),
        ("light", command(True, NOW + 30_000), None, "clock not synchronised"),
        ("gas-threshold", command(4242), NOW, "failed: the relay board did not answer"),
        ("light", b'{"id": "0b7e1f4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b"}', NOW, "invalid command"),
    ],
)
def test_refused_commands_are_rejected_with_a_reason_and_not_acted_on(
    hardware: Hardware, prop: str, payload: bytes, now: int | None, reason: str
) -> None:
    handler = CommandHandler(PROPERTIES, hardware.act)
    outcome = handler.handle(prop, payload, now)
    ack = Ack.from_bytes(outcome.ack or b"")
    assert ack.outcome == "rejected"
    assert (ack.reason or "").startswith(reason)
    assert hardware.calls == []
    control = handler.handle("gas-threshold", command(1000), NOW)  # the same handler still acts
    assert control.outcome == "done"
    assert hardware.calls == [("gas-threshold", 1000)]


def test_an_expired_command_is_acked_expired_and_never_acted_on(hardware: Hardware) -> None:
    handler = CommandHandler(PROPERTIES, hardware.act)
    outcome = handler.handle("light", command(True, NOW), NOW)
    assert Ack.from_bytes(outcome.ack or b"").outcome == "expired"
    assert hardware.calls == []
    assert handler.handle("light", command(True, NOW + 1), NOW).outcome == "done"  # control


def test_garbage_without_an_id_is_dropped(hardware: Hardware) -> None:
    outcome = CommandHandler(PROPERTIES, hardware.act).handle("light", b"\xff{", NOW)
    assert outcome.ack is None
    assert hardware.calls == []


def test_backoff_grows_with_jitter_and_resets() -> None:
    top = Backoff(lambda: 1.0, base=1.0, maximum=8.0)
    assert [top.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    top.reset()
    assert top.next() == 1.0
    values = iter([0.5, 0.25])
    jittered = Backoff(lambda: next(values), base=2.0, maximum=60.0)
    assert [jittered.next(), jittered.next()] == [1.0, 1.0]  # 0.5 * 2, 0.25 * 4
    assert Backoff(lambda: 0.0).next() == 0.1  # never a busy loop


def test_the_outbox_keeps_order_across_restarts_and_removes_only_what_was_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    for n in range(5):
        outbox.append(f"t/{n}", f"{n}".encode())
    outbox.remove_first(2)
    reopened = Outbox(path)
    assert reopened.first(10) == [(f"t/{n}", f"{n}".encode()) for n in (2, 3, 4)]
    with path.open("ab") as file:
        file.write(b'{"t": "t/5", "p"')  # a power cut mid-write: only that line is lost
    assert [topic for topic, _ in Outbox(path).first(10)] == ["t/2", "t/3", "t/4"]


def test_the_outbox_is_bounded_in_bytes_and_drops_the_oldest(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.jsonl", max_bytes=200)
    for n in range(20):
        outbox.append("hearth/h/d/telemetry/t", f"{n}".encode())
    assert (tmp_path / "outbox.jsonl").stat().st_size <= 200
    kept = [int(payload) for _, payload in outbox.first(100)]
    assert kept == list(range(20 - len(kept), 20))
    assert outbox.dropped == 20 - len(kept) > 0
    with pytest.raises(ValueError, match="larger than the whole outbox"):
        outbox.append("t", b"x" * 300)
