"""Telemetry parsing and its rejection reasons (hearth.common.telemetry)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.common.errors import HearthError
from hearth.common.messages import MessageError, TelemetryPayload
from hearth.common.telemetry import (
    CAPABILITY_REASONS,
    DEFAULT_LIMITS,
    Reading,
    RejectReason,
    TelemetryLimits,
    TelemetryRejected,
    parse_telemetry,
)

PROPERTY = settings(max_examples=1000, derandomize=True, database=None, deadline=None)

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()


def parse(payload: bytes, **kwargs: object) -> Reading:
    return parse_telemetry(payload, now=NOW, **kwargs)  # type: ignore[arg-type]


def reason_of(payload: bytes, **kwargs: object) -> RejectReason:
    with pytest.raises(TelemetryRejected) as info:
        parse(payload, **kwargs)
    assert info.value.detail
    assert str(info.value).startswith(info.value.reason.value + ": ")
    return info.value.reason


# ---------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"21.5", 21.5),
        (b"-3", -3.0),
        (b"1e3", 1000.0),
        (b"+.5", 0.5),
        (b"5.", 5.0),
        (b"-0", 0.0),
        (b"  21.5\r\n", 21.5),
        (b"\t7\n", 7.0),
        (b"1e12", 1e12),
        (b"-1E+12", -1e12),
        (b"007", 7.0),
    ],
)
def test_bare_numbers(payload: bytes, value: float) -> None:
    assert parse(payload) == Reading(value)


def test_booleans_become_numbers() -> None:
    assert parse(b"true") == Reading(1.0, is_bool=True)
    assert parse(b" false\n") == Reading(0.0, is_bool=True)
    assert parse(b'{"value": true}') == Reading(1.0, is_bool=True)


def test_json_object_with_ts_and_id() -> None:
    reading = parse(b'{"value": 21.5, "ts": "2026-11-21T09:59:00.250Z", "id": "b7-42"}')
    assert reading == Reading(21.5, ts=NOW - timedelta(seconds=59.75), msg_id="b7-42")


def test_json_object_with_epoch_ts() -> None:
    reading = parse(b'{"value": 2, "ts": %r}' % (NOW_S - 1.5))
    assert reading.ts == NOW - timedelta(seconds=1.5)
    assert reading.msg_id is None
    assert parse(b'{"value": 2, "ts": %d}' % int(NOW_S)).ts == NOW


def test_null_ts_and_id_mean_absent() -> None:
    assert parse(b'{"value": 1, "ts": null, "id": null}') == Reading(1.0)


def test_ts_limits_are_inclusive() -> None:
    skew, age = DEFAULT_LIMITS.max_future_skew.total_seconds(), DEFAULT_LIMITS.max_age
    assert parse(b'{"value": 1, "ts": %r}' % (NOW_S + skew)).ts == NOW + timedelta(seconds=skew)
    assert parse(b'{"value": 1, "ts": %r}' % (NOW - age).timestamp()).ts == NOW - age


def test_encoded_payload_model_parses() -> None:
    msg = TelemetryPayload(value=3, ts=NOW, id="x1-1")
    assert parse(msg.to_bytes()) == Reading(3.0, ts=NOW, msg_id="x1-1")


def test_now_defaults_to_current_time() -> None:
    recent = datetime.now(UTC) - timedelta(minutes=1)
    stale = datetime.now(UTC) - timedelta(days=31)
    assert parse_telemetry(b'{"value": 1, "ts": %r}' % recent.timestamp()).ts is not None
    with pytest.raises(TelemetryRejected):
        parse_telemetry(b'{"value": 1, "ts": %r}' % stale.timestamp())


def test_naive_now_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_telemetry(b"1", now=datetime(2026, 1, 1))


# ---------------------------------------------------------------- one test per reason


def test_too_large_checked_before_decoding() -> None:
    assert reason_of(b"1" * 1025) is RejectReason.TOO_LARGE
    assert reason_of(b"\xff" * 2000) is RejectReason.TOO_LARGE
    assert parse(b" " * 1020 + b"1") == Reading(1.0)
    assert reason_of(b"12345", limits=TelemetryLimits(max_bytes=4)) is RejectReason.TOO_LARGE


@pytest.mark.parametrize(
    "payload", [b"\xff", b"21\xc3", b"\xed\xa0\x80", b'{"value": 1, "id": "\xfe"}']
)
def test_invalid_utf8(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.INVALID_UTF8


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"hello",
        b"21,5",
        b"0x10",
        b"1_000",
        b"21.5 C",
        b"--1",
        b"\xef\xbc\x92\xef\xbc\x91",  # fullwidth digits
        b"\xd9\xa2",  # Arabic-Indic digit two
        b"True",
        b"{not json",
        b'{"value": "21.5"}',
        b'{"value": null}',
    ],
)
def test_not_a_number(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.NOT_A_NUMBER


@pytest.mark.parametrize(
    "payload",
    [
        b"NaN",
        b"nan",
        b"-inf",
        b"Infinity",
        b"-Infinity",
        b"1e999",
        b"-1e400",
        b"1" * 400,
        b'{"value": NaN}',
        b'{"value": Infinity}',
        b'{"value": -Infinity}',
        b'{"value": 1e999}',
        b'{"value": 1%s}' % (b"0" * 400),
        b'{"value": 1, "ts": NaN}',
    ],
)
def test_not_finite(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.NOT_FINITE


@pytest.mark.parametrize("payload", [b"1e13", b"-1000000000001", b'{"value": 1e300}'])
def test_out_of_range(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.OUT_OF_RANGE


def test_range_is_configurable() -> None:
    limits = TelemetryLimits(max_abs=100)
    assert parse(b"100", limits=limits) == Reading(100.0)
    assert reason_of(b"100.5", limits=limits) is RejectReason.OUT_OF_RANGE
    assert parse(b"true", limits=TelemetryLimits(max_abs=0.5)).value == 1.0  # booleans exempt


@pytest.mark.parametrize(
    "ts",
    [
        b'"2026-11-21T10:05:00.001Z"',
        b'"9999-12-31T23:59:59Z"',
        b"%r" % (NOW_S + 301),
        b"1e300",
        b"1e308",
        b"1%s" % (b"0" * 400),
    ],
)
def test_ts_in_future(ts: bytes) -> None:
    assert reason_of(b'{"value": 1, "ts": %s}' % ts) is RejectReason.TS_IN_FUTURE


@pytest.mark.parametrize(
    "ts",
    [
        b'"2026-10-22T09:59:59.999Z"',
        b'"0001-01-01T00:00:00Z"',
        b"0",
        b"-1e300",
        b"-1%s" % (b"0" * 400),
    ],
)
def test_ts_too_old(ts: bytes) -> None:
    assert reason_of(b'{"value": 1, "ts": %s}' % ts) is RejectReason.TS_TOO_OLD


def test_ts_window_is_configurable() -> None:
    limits = TelemetryLimits(max_future_skew=timedelta(0), max_age=timedelta(seconds=10))
    assert reason_of(b'{"value": 1, "ts": %r}' % (NOW_S + 0.01), limits=limits) is (
        RejectReason.TS_IN_FUTURE
    )
    assert reason_of(b'{"value": 1, "ts": %r}' % (NOW_S - 11), limits=limits) is (
        RejectReason.TS_TOO_OLD
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"[21.5]",
        b'"21.5"',
        b"null",
        b"[" * 500 + b"]" * 500,
        b"{}",
        b'{"ts": "2026-11-21T10:00:00Z"}',
        b'{"value": [1]}',
        b'{"value": {"v": 1}}',
        b'{"value": 1, "value": 2}',
        b'{"value": 1, "ts": "yesterday"}',
        b'{"value": 1, "ts": "2026-11-21T10:00:00"}',
        b'{"value": 1, "ts": true}',
        b'{"value": 1, "ts": [1]}',
        b'{"value": 1, "id": 17}',
        b'{"value": 1, "id": "17"}',
        b'{"value": 1, "id": "boot-"}',
        b'{"value": 1, "id": "b\xc3\xa4-1"}',
        b'{"value": 1, "id": "%s-1"}' % (b"a" * 33),
        b'{"value": 1, "id": "a-%s"}' % (b"1" * 21),
    ],
)
def test_wrong_shape(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.WRONG_SHAPE


def test_deep_nesting_inside_object() -> None:
    nested = b'{"value": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert reason_of(nested, limits=TelemetryLimits(max_bytes=20_000)) is RejectReason.WRONG_SHAPE


@pytest.mark.parametrize(
    "payload", [b'{"value": 1, "unit": "C"}', b'{"v": 1}', b'{"value": 1, "TS": 0}']
)
def test_unknown_keys(payload: bytes) -> None:
    assert reason_of(payload) is RejectReason.UNKNOWN_KEYS


def test_every_reason_has_a_test() -> None:
    tested = {
        RejectReason.TOO_LARGE,
        RejectReason.INVALID_UTF8,
        RejectReason.NOT_A_NUMBER,
        RejectReason.NOT_FINITE,
        RejectReason.OUT_OF_RANGE,
        RejectReason.WRONG_SHAPE,
        RejectReason.UNKNOWN_KEYS,
        RejectReason.TS_IN_FUTURE,
        RejectReason.TS_TOO_OLD,
    }
    # The capability reasons are ingest's checks: services/ingest/tests/test_pipeline.py
    # and test_capabilities.py.
    assert tested == set(RejectReason) - CAPABILITY_REASONS


def test_rejection_is_a_library_error() -> None:
    with pytest.raises(MessageError) as info:
        parse(b"nope")
    assert isinstance(info.value, HearthError)
    assert isinstance(info.value, ValueError)
    assert info.value.status == 400


# ---------------------------------------------------------------- fuzz


def _outcome(payload: bytes) -> Reading | TelemetryRejected:
    try:
        return parse(payload)
    except TelemetryRejected as exc:  # anything else escaping fails the test
        return exc


def _only_reading_or_rejection(payload: bytes) -> None:
    reading = _outcome(payload)
    if isinstance(reading, TelemetryRejected):
        assert reading.reason in set(RejectReason)
        assert reading.detail
        return
    assert abs(reading.value) <= DEFAULT_LIMITS.max_abs
    if reading.ts is not None:
        assert reading.ts.tzinfo is UTC
        assert NOW - DEFAULT_LIMITS.max_age <= reading.ts <= NOW + DEFAULT_LIMITS.max_future_skew


arbitrary_payloads = st.one_of(
    st.binary(max_size=1100),
    st.text(max_size=40).map(str.encode),
    st.text('0123456789.eE+- \t\n{}[]":,truefalsnIiNy', max_size=40).map(str.encode),
)


@PROPERTY
@given(arbitrary_payloads)
def test_fuzz_arbitrary_bytes(payload: bytes) -> None:
    _only_reading_or_rejection(payload)


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**30), max_value=10**30),
)
raw_json_values = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e999", "-0", "true", "null", "[]", "{}", '"x"', "1" * 50]
)
json_leaves = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=30), st.sampled_from(["b1-1", "x-99"])
)
ts_values = st.one_of(
    json_leaves,
    st.floats(min_value=NOW_S - 40 * 86400, max_value=NOW_S + 600),
    st.datetimes(min_value=datetime(2026, 10, 1), max_value=datetime(2026, 12, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
)
keys = st.sampled_from(["value", "value", "ts", "id", "unit"])


@st.composite
def near_valid_json(draw: st.DrawFn) -> bytes:
    """JSON objects and values close to valid telemetry, with hand-made raw tokens spliced in."""
    obj: dict[str, object] = {}
    for key in draw(st.lists(keys, max_size=4)):
        obj[key] = draw(ts_values if key == "ts" else json_leaves)
    shape = draw(st.sampled_from(["object", "object", "bare", "list", "raw"]))
    if shape == "bare":
        text = json.dumps(draw(json_leaves))
    elif shape == "list":
        text = json.dumps([obj])
    else:
        text = json.dumps(obj)
    if shape == "raw" and "value" in obj:
        text = text.replace(json.dumps(obj["value"]), draw(raw_json_values), 1)
    padding = draw(st.sampled_from(["", " ", "\n", "\t "]))
    return (padding + text + padding).encode()


@PROPERTY
@given(near_valid_json())
def test_fuzz_near_valid_json(payload: bytes) -> None:
    _only_reading_or_rejection(payload)
