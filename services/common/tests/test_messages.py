"""MQTT payload models and timestamps (hearth.common.messages)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.common.clock import utc_now
from hearth.common.errors import HearthError
from hearth.common.messages import (
    Ack,
    AckOutcome,
    Command,
    CommandOutcome,
    Message,
    MessageError,
    PayloadError,
    PresenceState,
    RegistryAction,
    RegistryEvent,
    RegistryKind,
    ServiceStatus,
    StatePayload,
    Status,
    StatusReason,
    TelemetryPayload,
    UserMark,
    format_timestamp,
    parse_state,
    parse_status,
    parse_timestamp,
    service_status_payload,
)

PROPERTY = settings(max_examples=1000, derandomize=True, database=None, deadline=None)

USER = "6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d"
CMD_ID = "0b7e1f4a-3c2d-4e5f-8a9b-0c1d2e3f4a5b"
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MODELS: list[type[Message]] = [
    TelemetryPayload,
    StatePayload,
    Command,
    Ack,
    Status,
    ServiceStatus,
    UserMark,
    RegistryEvent,
]

# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-21T10:00:00Z", T0),
        ("2026-11-21t10:00:00z", T0),
        ("2026-11-21 10:00:00Z", T0),
        ("2026-11-21T11:00:00+01:00", T0),
        ("2026-11-21T04:30:00-05:30", T0),
        ("2026-11-21T10:00:00.25Z", T0 + timedelta(milliseconds=250)),
        ("2026-11-21T10:00:00.1234Z", T0 + timedelta(milliseconds=123)),
        ("2026-11-21T10:00:00.1235Z", T0 + timedelta(milliseconds=124)),
        ("2026-11-21T09:59:59.999999999Z", T0),
        (1795255200, T0),
        (1795255200.25, T0 + timedelta(milliseconds=250)),
        (1795255200.123, T0 + timedelta(milliseconds=123)),
        (datetime(2026, 11, 21, 11, tzinfo=timezone(timedelta(hours=1))), T0),
    ],
)
def test_parse_timestamp_accepts(raw: object, expected: datetime) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-21",
        "2026-11-21T10:00:00",  # no offset
        "20261121T100000Z",
        "2026-02-30T10:00:00Z",
        "2026-11-21T10:00:60Z",
        "2026-11-21T10:00:00+24:00",
        "2026-11-21T10:00:00.Z",
        "٢٠٢٦-11-21T10:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        True,
        float("nan"),
        float("inf"),
        1e20,
        None,
        [1],
        datetime(2026, 11, 21, 10),  # naive
    ],
)
def test_parse_timestamp_refuses(raw: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - plain ValueError is the contract
        parse_timestamp(raw)


def test_format_timestamp_is_rfc3339_utc_with_ms() -> None:
    assert format_timestamp(T0 + timedelta(milliseconds=5)) == "2026-11-21T10:00:00.005Z"
    local = datetime(2026, 11, 21, 11, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(local) == "2026-11-21T10:00:00.000Z"


def test_service_status_payloads_are_birth_will_and_goodbye() -> None:
    birth = ServiceStatus.from_bytes(service_status_payload(StatusReason.CONNECTED))
    assert (birth.state, birth.reason) == (PresenceState.ONLINE, StatusReason.CONNECTED)
    assert birth.ts is not None
    assert service_status_payload(StatusReason.WILL) == b'{"state":"offline","reason":"will"}'
    goodbye = ServiceStatus.from_bytes(service_status_payload(StatusReason.DISCONNECT))
    assert (goodbye.state, goodbye.ts is not None) == (PresenceState.OFFLINE, True)
    with pytest.raises(ValueError, match="silent"):
        service_status_payload(StatusReason.SILENT)


def test_utc_now_has_ms_precision() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


@PROPERTY
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_timestamps_round_trip(naive: datetime) -> None:
    value = naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=UTC)
    assert parse_timestamp(format_timestamp(value)) == value
    epoch = (value - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)
    assert parse_timestamp(epoch) == value
    # Sub-millisecond input is rounded to the nearest millisecond.
    exact = naive.replace(tzinfo=UTC)
    assert abs(parse_timestamp(exact) - exact) <= timedelta(microseconds=500)


# ---------------------------------------------------------------- errors


def test_error_tree() -> None:
    assert issubclass(PayloadError, MessageError)
    assert issubclass(MessageError, HearthError)
    assert issubclass(MessageError, ValueError)
    assert PayloadError("x").status == 400


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'"online"',
        b"[" * 5000 + b"]" * 5000,
        b'{"value": NaN, "state": "online"}',
    ],
)
def test_decode_refuses_garbage(model: type[Message], payload: bytes) -> None:
    with pytest.raises(PayloadError, match=f"invalid {model.__name__}"):
        model.from_bytes(payload)


@PROPERTY
@given(
    st.one_of(
        st.binary(max_size=64),
        st.dictionaries(
            st.sampled_from(["value", "state", "id", "ts", "kind", "x"]),
            st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=5)),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_decoders_raise_only_payload_error(payload: bytes) -> None:
    for model in MODELS:
        try:
            decoded = model.from_bytes(payload)
        except PayloadError:
            continue
        assert model.from_bytes(decoded.to_bytes()) == decoded


# ---------------------------------------------------------------- device payloads


def test_telemetry_payload_encodes_json_form() -> None:
    msg = TelemetryPayload(value=21.5, ts=T0, id="a1b2-17")
    assert json.loads(msg.to_bytes()) == {
        "value": 21.5,
        "ts": "2026-11-21T10:00:00.000Z",
        "id": "a1b2-17",
    }
    assert TelemetryPayload.from_bytes(msg.to_bytes()) == msg
    assert TelemetryPayload(value=True).to_bytes() == b'{"value":true}'


@pytest.mark.parametrize(
    "payload",
    [
        b'{"value": "21.5"}',
        b'{"value": 1e999}',
        b'{"value": 1, "id": "x"}',
        b'{"value": 1, "u": 1}',
    ],
)
def test_telemetry_payload_refuses(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        TelemetryPayload.from_bytes(payload)


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"on", "on"),
        (b" on \n", "on"),
        (b"21", 21),
        (b"true", True),
        (b'"on"', "on"),
        (b"null", None),
        (b'{"value": {"r": 1}}', {"r": 1}),
        (b'{"value": 3, "ts": 1795255200}', 3),
    ],
)
def test_parse_state_forms(payload: bytes, value: object) -> None:
    assert parse_state(payload).value == value


def test_parse_state_keeps_ts() -> None:
    assert parse_state(b'{"value": 3, "ts": "2026-11-21T10:00:00Z"}').ts == T0


def test_state_encoding_keeps_null_value() -> None:
    assert StatePayload(value=None).to_bytes() == b'{"value":null}'
    assert parse_state(StatePayload(value=None).to_bytes()) == StatePayload(value=None)


@pytest.mark.parametrize("payload", [b"", b"  ", b"\xff", b'{"r": 1}', b"[NaN]", b'{"value": 1'])
def test_parse_state_refuses(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_state(payload)


def _command(**changes: object) -> Command:
    fields: dict[str, object] = {
        "id": CMD_ID,
        "value": True,
        "issued_at": T0,
        "expires_at": T0 + timedelta(seconds=30),
        "by": USER,
    }
    fields.update(changes)
    return Command.model_validate(fields)


def test_command_round_trips_and_shows_null_expiry() -> None:
    cmd = _command(expires_at=None)
    assert json.loads(cmd.to_bytes()) == {
        "id": CMD_ID,
        "value": True,
        "issued_at": "2026-11-21T10:00:00.000Z",
        "expires_at": None,
        "by": USER,
    }
    assert Command.from_bytes(cmd.to_bytes()) == cmd
    assert cmd.id == uuid.UUID(CMD_ID)


def test_command_expiry() -> None:
    cmd = _command()
    assert not cmd.is_expired(T0 + timedelta(seconds=29))
    assert cmd.is_expired(T0 + timedelta(seconds=30))
    assert not _command(expires_at=None).is_expired(T0 + timedelta(days=999))


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "not-a-uuid"},
        {"by": USER.upper()},
        {"by": "alice"},
        {"value": float("nan")},
        {"value": [1, {"x": float("inf")}]},
        {"issued_at": "yesterday"},
        {"extra": 1},
    ],
)
def test_command_refuses(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        _command(**changes)


def test_ack_and_outcomes() -> None:
    ack = Ack.from_bytes(b'{"id": "%s", "outcome": "rejected", "reason": "busy"}' % CMD_ID.encode())
    assert ack.outcome is AckOutcome.REJECTED
    assert ack.reason == "busy"
    assert json.loads(ack.to_bytes()) == {"id": CMD_ID, "outcome": "rejected", "reason": "busy"}
    done = Ack(id=uuid.UUID(CMD_ID), outcome=AckOutcome.DONE, value={"on": True})
    assert Ack.from_bytes(done.to_bytes()) == done
    assert {o.value for o in CommandOutcome} == {o.value for o in AckOutcome} | {"timeout"}
    with pytest.raises(PayloadError, match="outcome"):
        Ack.from_bytes(b'{"id": "%s", "outcome": "timeout"}' % CMD_ID.encode())


@pytest.mark.parametrize(
    ("payload", "state", "reason"),
    [
        (b"online", PresenceState.ONLINE, None),
        (b"offline\n", PresenceState.OFFLINE, None),
        (b"OFFLINE", PresenceState.OFFLINE, None),
        (b'"online"', PresenceState.ONLINE, None),
        (b'{"state": "offline", "reason": "will"}', PresenceState.OFFLINE, StatusReason.WILL),
        (b'{"state": "online", "reason": "connected", "ts": 1795255200}', "online", "connected"),
        (b'{"state": "offline", "reason": "silent"}', PresenceState.OFFLINE, StatusReason.SILENT),
    ],
)
def test_parse_status_forms(payload: bytes, state: str, reason: str | None) -> None:
    status = parse_status(payload)
    assert status.state == state
    assert status.reason == reason


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"up",
        b"\xff",
        b'{"state": "online", "reason": "will"}',
        b'{"state": "offline", "reason": "connected"}',
        b'{"state": "away"}',
        b'{"state": "online", "reason": "connected", "extra": 1}',
    ],
)
def test_parse_status_refuses(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_status(payload)


def test_status_encodes_will() -> None:
    will = Status(state=PresenceState.OFFLINE, reason=StatusReason.WILL)
    assert will.to_bytes() == b'{"state":"offline","reason":"will"}'
    birth = ServiceStatus(state=PresenceState.ONLINE, reason=StatusReason.CONNECTED, ts=T0)
    assert ServiceStatus.from_bytes(birth.to_bytes()) == birth


# ---------------------------------------------------------------- system bus


def test_user_mark() -> None:
    mark = UserMark.from_bytes(b'{"not_before": 1795255200123, "disabled": true}')
    assert mark == UserMark(not_before=1795255200123, disabled=True)
    assert UserMark.from_bytes(mark.to_bytes()) == mark


@pytest.mark.parametrize(
    "payload",
    [
        b'{"not_before": "1795255200123", "disabled": false}',
        b'{"not_before": 1795255200.5, "disabled": false}',
        b'{"not_before": -1, "disabled": false}',
        b'{"not_before": 1, "disabled": 0}',
        b'{"not_before": 1, "disabled": "false"}',
        b'{"disabled": false}',
    ],
)
def test_user_mark_is_strict(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        UserMark.from_bytes(payload)


def test_presence_event() -> None:
    event = RegistryEvent.from_bytes(
        b'{"kind": "presence", "home": "k", "action": "updated", "device": "lamp",'
        b' "presence": {"state": "offline", "reason": "silent", "ts": 0}, "ts": 0}'
    )
    assert event.presence is not None
    assert event.presence.reason is StatusReason.SILENT
    assert not event.changes_rights
    for bad in (
        b'{"kind": "presence", "home": "k", "action": "updated", "device": "lamp", "ts": 0}',
        b'{"kind": "presence", "home": "k", "action": "updated", "ts": 0,'
        b' "presence": {"state": "online"}}',
        b'{"kind": "device", "home": "k", "action": "updated", "device": "lamp", "ts": 0,'
        b' "presence": {"state": "online"}}',
    ):
        with pytest.raises(PayloadError):
            RegistryEvent.from_bytes(bad)


def test_registry_event() -> None:
    event = RegistryEvent(
        kind=RegistryKind.DEVICE,
        home="kitchen",
        action=RegistryAction.DELETED,
        device="lamp",
        ts=T0,
    )
    assert json.loads(event.to_bytes()) == {
        "kind": "device",
        "home": "kitchen",
        "action": "deleted",
        "device": "lamp",
        "ts": "2026-11-21T10:00:00.000Z",
    }
    assert RegistryEvent.from_bytes(event.to_bytes()) == event
    member = RegistryEvent.from_bytes(
        b'{"kind": "membership", "home": "k", "action": "created", "user": "%s", "ts": 0}'
        % USER.encode()
    )
    assert member.user == USER


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "device"},
        {"kind": "membership"},
        {"kind": "home", "device": "lamp"},
        {"kind": "home", "user": USER},
        {"kind": "membership", "user": USER, "device": "lamp"},
        {"kind": "home", "home": "Kitchen"},
        {"kind": "home", "action": "renamed"},
    ],
)
def test_registry_event_subject_must_fit_kind(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"home": "kitchen", "action": "updated", "ts": T0}
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        RegistryEvent.model_validate(base | fields)


def test_models_are_immutable() -> None:
    mark = UserMark(not_before=1)
    with pytest.raises(ValueError):  # noqa: PT011 - frozen instance error
        mark.disabled = True  # type: ignore[misc]
