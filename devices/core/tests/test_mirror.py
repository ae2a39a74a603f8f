"""The MicroPython-safe copies in hearth_device.protocol against hearth.common's contracts.

hearth.common is the truth (docs/topics.md); the device modules cannot import it (they run on
MicroPython), so these tests feed both copies the same inputs and require the same answers.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hearth.common import topics as common_topics
from hearth.common.capabilities import Property
from hearth.common.messages import (
    MSG_ID_PATTERN,
    Ack,
    Command,
    format_timestamp,
    parse_state,
    parse_status,
    parse_timestamp,
)
from hearth.common.telemetry import parse_telemetry
from hearth_device.protocol import capabilities, messages
from hearth_device.protocol.topics import DeviceTopics, is_slug

SLUGISH = st.text(alphabet="abz09-_A/+# é", min_size=0, max_size=70)
USER = "6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d"


@given(SLUGISH)
def test_slugs_are_the_platforms(text: str) -> None:
    assert is_slug(text) == common_topics.is_slug(text)


@pytest.mark.parametrize("slug", ["a", "0", "a" * 63, "a" * 64, "-a", "a-", "A", "", "a_b"])
def test_slug_edges(slug: str) -> None:
    assert is_slug(slug) == common_topics.is_slug(slug)


def test_topics_are_the_platforms() -> None:
    mine = DeviceTopics("flat", "pi-1")
    assert mine.telemetry("soil-moisture") == common_topics.telemetry_topic(
        "flat", "pi-1", "soil-moisture"
    )
    assert mine.state("pump") == common_topics.state_topic("flat", "pi-1", "pump")
    assert mine.command("pump") == common_topics.command_topic("flat", "pi-1", "pump")
    assert mine.ack == common_topics.ack_topic("flat", "pi-1")
    assert mine.status == common_topics.status_topic("flat", "pi-1")
    kind = common_topics.Kind.COMMAND
    assert mine.command_filter == common_topics.device_filter(kind, "flat", "pi-1")
    assert mine.command_property(common_topics.command_topic("flat", "pi-1", "light")) == "light"
    assert mine.command_property(common_topics.command_topic("flat", "pi-2", "light")) is None
    assert mine.command_property("hearth/flat/pi-1/command/Light") is None
    with pytest.raises(ValueError, match="not a slug"):
        mine.telemetry("Temp")
    with pytest.raises(ValueError, match="not a slug"):
        DeviceTopics("flat", "pi/1")


MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1),  # hypothesis wants naive bounds
    max_value=datetime(9998, 12, 31),
    timezones=st.just(UTC),
)


@given(MOMENTS)
def test_timestamps_are_written_as_the_platform_writes_them(moment: datetime) -> None:
    moment = parse_timestamp(moment)  # rounded to the millisecond
    epoch_ms = round(moment.timestamp() * 1000)
    assert messages.format_timestamp(epoch_ms) == format_timestamp(moment)


@given(MOMENTS, st.integers(-23 * 60 - 59, 23 * 60 + 59), st.integers(0, 999_999_999))
def test_timestamps_are_read_as_the_platform_reads_them(
    moment: datetime, offset_min: int, nanos: int
) -> None:
    sign = "+" if offset_min >= 0 else "-"
    local = moment.replace(microsecond=0) + timedelta(minutes=offset_min)
    text = (
        local.strftime("%Y-%m-%dT%H:%M:%S")
        + f".{nanos:09d}{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    )
    expected = parse_timestamp(text)
    assert messages.parse_timestamp(text) == round(expected.timestamp() * 1000)


@pytest.mark.parametrize(
    "text",
    ["2026-11-21", "2026-11-21T10:00:00", "2026-02-30T10:00:00Z", "2026-11-21T10:00:60Z",
     "2026-11-21T10:00:00+24:00", "2026-11-21T10:00:00.Z", "x", "2026-11-21T10:00:00ZZ"],
)  # fmt: skip
def test_timestamps_the_platform_refuses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|offset|outside|day|month|second"):
        parse_timestamp(text)
    with pytest.raises(ValueError, match=r"not a|no UTC offset|bad"):
        messages.parse_timestamp(text)


def test_epoch_seconds_and_a_good_control() -> None:
    assert messages.parse_timestamp(1795255200.25) == 1795255200250
    assert messages.parse_timestamp(1795255200) == 1795255200000
    assert messages.parse_timestamp("2026-11-21T10:00:00Z") == round(
        parse_timestamp("2026-11-21T10:00:00Z").timestamp() * 1000
    )
    with pytest.raises(ValueError, match="boolean"):
        messages.parse_timestamp(True)


@given(st.one_of(st.booleans(), st.integers(-(10**9), 10**9), st.floats(-1e9, 1e9)))
def test_telemetry_reads_back_at_ingest(value: bool | int | float) -> None:
    ids = messages.MessageIds(messages.boot_id(b"\x01\xab\xff"))
    msg_id = ids.next()
    reading = parse_telemetry(messages.telemetry(value, msg_id, 1795255200250))
    assert reading.value == float(value)
    assert reading.is_bool == isinstance(value, bool)
    assert reading.msg_id == msg_id == "01abff-1"
    assert reading.ts == datetime(2026, 11, 21, 10, 0, 0, 250_000, tzinfo=UTC)
    assert parse_telemetry(messages.telemetry(value)).ts is None  # clock not synchronised


def test_message_ids_fit_the_platforms_pattern() -> None:
    ids = messages.MessageIds(messages.boot_id(bytes(range(16))))
    assert re.fullmatch(MSG_ID_PATTERN, ids.next())
    assert re.fullmatch(MSG_ID_PATTERN, messages.MessageIds("Zz9", 10**19).next())
    with pytest.raises(ValueError, match="boot id"):
        messages.MessageIds("a-b")
    with pytest.raises(ValueError, match="NaN"):
        messages.telemetry(float("nan"))


def test_status_state_and_ack_read_back_on_the_platform() -> None:
    birth = parse_status(messages.birth(1795255200000))
    assert (birth.state, birth.reason, birth.ts) == (
        "online",
        "connected",
        datetime(2026, 11, 21, 10, tzinfo=UTC),
    )
    assert parse_status(messages.will()).model_dump() == {
        "state": "offline",
        "reason": "will",
        "ts": None,
    }
    assert parse_status(messages.goodbye()).reason == "disconnect"
    assert parse_state(messages.state(True)).value is True
    assert parse_state(messages.state({"r": 255}, 0)).value == {"r": 255}
    command_id = str(uuid.uuid4())
    done = Ack.from_bytes(messages.ack(command_id, messages.DONE, value=True))
    assert (str(done.id), done.outcome, done.value) == (command_id, "done", True)
    rejected = Ack.from_bytes(messages.ack(command_id, messages.REJECTED, "x" * 500))
    assert rejected.reason == "x" * 200
    assert Ack.from_bytes(messages.ack(command_id, messages.EXPIRED)).outcome == "expired"
    with pytest.raises(ValueError, match="done, rejected or expired"):
        messages.ack(command_id, "timeout")  # the platform's word, never a device's


@pytest.mark.parametrize("expires", [None, datetime(2026, 11, 21, 10, 0, 30, tzinfo=UTC)])
def test_the_platforms_command_is_read(expires: datetime | None) -> None:
    issued = datetime(2026, 11, 21, 10, tzinfo=UTC)
    sent = Command(id=uuid.uuid4(), value=21.5, issued_at=issued, expires_at=expires, by=USER)
    command = messages.parse_command(sent.to_bytes())
    assert command.id == str(sent.id)
    assert command.value == 21.5
    assert command.by == USER
    assert command.issued_at == 1795255200000
    assert command.expires_at == (None if expires is None else 1795255230000)
    assert command.is_expired(1795255230000) == sent.is_expired(issued + timedelta(seconds=30))
    assert command.is_expired(1795255229999) == sent.is_expired(issued + timedelta(seconds=29.999))


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b"{}", b'{"id": "x", "value": 1, "issued_at": 0, "expires_at": null, "by": "u"}',
         b'{"id": "0b7e1f4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b", "value": NaN, "issued_at": 0,'
     b' "expires_at": null, "by": "' + USER.encode() + b'"}'],
)  # fmt: skip
def test_what_the_platform_refuses_as_a_command_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="invalid Command"):
        Command.from_bytes(payload)
    with pytest.raises(ValueError, match=r"command|NaN"):
        messages.parse_command(payload)


def test_a_command_without_expires_at_never_expires_on_both_sides() -> None:
    payload = b'{"id": "0b7e1f4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b", "value": 1, "issued_at": 0, "by": "'
    payload += USER.encode() + b'"}'
    assert Command.from_bytes(payload).expires_at is None
    assert messages.parse_command(payload).expires_at is None


PROPERTIES = [
    Property(name="power", kind="boolean"),
    Property(name="mode", kind="enum", values=["off", "heat", "auto"]),
    Property(name="target", kind="number", min=5, max=30, step=0.5),
    Property(name="level", kind="number", min=-1.5, max=1e6),
]
VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.sampled_from(["off", "heat", "auto", "Heat", ""]),
    st.integers(-10, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5, 5.5, 5.25, 30, 30.5, 29.999999999999, -1.5, 1e6, 1e6 + 1]),
    st.lists(st.integers(), max_size=2),
)


@given(VALUES)
def test_command_values_are_checked_as_the_platform_checks_them(value: object) -> None:
    for prop in PROPERTIES:
        declared = prop.model_dump()
        assert (capabilities.refusal(declared, value) is None) == prop.accepts(value), (
            prop.name,
            value,
        )
