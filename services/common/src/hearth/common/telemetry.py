"""Reading telemetry payloads: what ingest stores, and why it refuses the rest.

Errors (the root is :class:`hearth.common.errors.HearthError`)::

    HearthError
    └── MessageError(HearthError, ValueError)     [hearth.common.messages]
        └── TelemetryRejected                     ``reason`` (a RejectReason) and ``detail``

A telemetry payload is one of:

- a bare number, as ``mosquitto_pub -m 21.5`` sends it: ``21.5``, ``-3``, ``1e3``, ``+.5``
  (ASCII digits, optional sign, fraction and exponent; surrounding whitespace ignored);
- ``true`` or ``false``;
- a JSON object ``{"value": <number or bool>, "ts": <RFC 3339 or epoch seconds>,
  "id": "<boot>-<seq>"}`` where only ``value`` is required (``null`` means absent).

:func:`parse_telemetry` turns any bytes into a :class:`Reading` or raises
:class:`TelemetryRejected`; no other exception escapes it.

Booleans are stored as numbers: ``true`` is 1.0 and ``false`` 0.0, and
:attr:`Reading.is_bool` remembers that the device sent a boolean.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from hearth.common.messages import (
    MSG_ID_PATTERN,
    MessageError,
    format_timestamp,
    parse_timestamp,
)

__all__ = [
    "CAPABILITY_REASONS",
    "DEFAULT_LIMITS",
    "Reading",
    "RejectReason",
    "TelemetryLimits",
    "TelemetryRejected",
    "parse_telemetry",
]

_BARE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_MSG_ID = re.compile(MSG_ID_PATTERN)
_WHITESPACE = " \t\r\n"
_KEYS: Final = frozenset({"value", "ts", "id"})


class RejectReason(StrEnum):
    """Why ingest refused a telemetry payload (stored with the reject)."""

    TOO_LARGE = "too_large"
    """More bytes than :attr:`TelemetryLimits.max_bytes` (checked before anything else)."""
    INVALID_UTF8 = "invalid_utf8"
    """The payload is not UTF-8 text."""
    NOT_A_NUMBER = "not_a_number"
    """Neither a number, ``true``/``false`` nor a JSON object; or a ``value`` that is text/null."""
    NOT_FINITE = "not_finite"
    """NaN or an infinity, including ``1e999`` and other numbers too big for a double."""
    OUT_OF_RANGE = "out_of_range"
    """``abs(value)`` above :attr:`TelemetryLimits.max_abs`."""
    WRONG_SHAPE = "wrong_shape"
    """JSON, but not of the accepted shapes: an array, a string, a nested value, a bad ts/id."""
    UNKNOWN_KEYS = "unknown_keys"
    """A JSON object with keys other than ``value``, ``ts`` and ``id``."""
    TS_IN_FUTURE = "ts_in_future"
    """``ts`` later than now plus :attr:`TelemetryLimits.max_future_skew`."""
    TS_TOO_OLD = "ts_too_old"
    """``ts`` earlier than now minus :attr:`TelemetryLimits.max_age`."""
    UNKNOWN_DEVICE = "unknown_device"
    """The topic names a device the registry does not know (checked by ingest, not the parser)."""
    OUT_OF_DECLARED_RANGE = "out_of_declared_range"
    """The value is below the metric's declared ``min`` or above its ``max`` (which one: detail)."""
    UNDECLARED_METRIC = "undeclared_metric"
    """A metric the device does not declare, on a device marked to refuse undeclared metrics."""


CAPABILITY_REASONS: Final = frozenset(
    {
        RejectReason.UNKNOWN_DEVICE,
        RejectReason.OUT_OF_DECLARED_RANGE,
        RejectReason.UNDECLARED_METRIC,
    }
)
"""The reasons ingest finds against the device's capabilities; the others are the parser's."""


class TelemetryRejected(MessageError):
    """A telemetry payload ingest refuses; ``reason`` says which rule, ``detail`` how."""

    code = "telemetry_rejected"
    title = "Telemetry rejected"

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TelemetryLimits:
    """The bounds :func:`parse_telemetry` enforces."""

    max_bytes: int = 1024
    max_abs: float = 1e12
    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


DEFAULT_LIMITS: Final = TelemetryLimits()


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted telemetry value.

    ``value`` is always a finite float (booleans become 1.0/0.0, with ``is_bool`` set);
    ``ts`` is the device's own time (aware UTC, milliseconds) or ``None`` when it sent none;
    ``msg_id`` is the ``<boot>-<seq>`` id or ``None``.
    """

    value: float
    is_bool: bool = False
    ts: datetime | None = None
    msg_id: str | None = None


def parse_telemetry(
    payload: bytes | bytearray,
    *,
    now: datetime | None = None,
    limits: TelemetryLimits = DEFAULT_LIMITS,
) -> Reading:
    """Read one telemetry payload or raise :class:`TelemetryRejected` saying why not.

    ``now`` (default: the current time; must be timezone-aware) is what ``ts`` is checked
    against.
    """
    if now is not None and now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    try:
        return _parse(bytes(payload), now, limits)
    except TelemetryRejected:
        raise
    except RecursionError:
        raise TelemetryRejected(RejectReason.WRONG_SHAPE, "nested too deeply") from None
    except Exception as exc:  # a bug in a rule must still come out as a rejection
        raise TelemetryRejected(RejectReason.WRONG_SHAPE, f"unreadable: {exc!r}") from None


def _reject(reason: RejectReason, detail: str) -> TelemetryRejected:
    return TelemetryRejected(reason, detail)


def _parse(payload: bytes, now: datetime | None, limits: TelemetryLimits) -> Reading:
    if len(payload) > limits.max_bytes:
        raise _reject(RejectReason.TOO_LARGE, f"{len(payload)} bytes, limit is {limits.max_bytes}")
    try:
        text = payload.decode("utf-8").strip(_WHITESPACE)
    except UnicodeDecodeError as exc:
        raise _reject(RejectReason.INVALID_UTF8, f"byte {exc.start} is not UTF-8") from None
    if text in ("true", "false"):
        return Reading(1.0 if text == "true" else 0.0, is_bool=True)
    if _BARE_NUMBER.fullmatch(text):
        return Reading(_check_number(float(text), text, limits))
    if _NON_FINITE.fullmatch(text):
        raise _reject(RejectReason.NOT_FINITE, f"{text!r} is not a finite number")
    if not text.startswith("{"):
        return _parse_other_json(text)
    obj = _load_json(text)
    if not isinstance(obj, dict):  # pragma: no cover - text starts with "{"
        raise _reject(RejectReason.WRONG_SHAPE, "expected a JSON object")
    return _parse_object(obj, now, limits)


def _refuse_constant(token: str) -> Any:
    raise _reject(RejectReason.NOT_FINITE, f"{token} is not a finite number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _reject(RejectReason.WRONG_SHAPE, "duplicate keys in the JSON object")
    return obj


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except TelemetryRejected:
        raise
    except json.JSONDecodeError as exc:
        raise _reject(RejectReason.NOT_A_NUMBER, f"not a number and not JSON: {exc}") from None
    except ValueError as exc:  # e.g. an integer with too many digits
        raise _reject(RejectReason.NOT_A_NUMBER, f"unreadable number: {exc}") from None


def _parse_other_json(text: str) -> Reading:
    """Text that is no number, bool or object: say whether it is other JSON or not JSON."""
    if not text:
        raise _reject(RejectReason.NOT_A_NUMBER, "empty payload")
    value = _load_json(text)
    raise _reject(
        RejectReason.WRONG_SHAPE,
        f"a JSON {_json_type(value)} is not telemetry (send a number, true/false or an object)",
    )


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


def _check_number(number: float, shown: str, limits: TelemetryLimits) -> float:
    if not math.isfinite(number):
        raise _reject(RejectReason.NOT_FINITE, f"{shown[:40]!r} is not a finite number")
    if abs(number) > limits.max_abs:
        raise _reject(RejectReason.OUT_OF_RANGE, f"{number!r} is beyond ±{limits.max_abs:g}")
    return number


def _parse_object(obj: dict[str, Any], now: datetime | None, limits: TelemetryLimits) -> Reading:
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise _reject(RejectReason.UNKNOWN_KEYS, f"unknown keys {unknown[:5]!r}")
    if "value" not in obj:
        raise _reject(RejectReason.WRONG_SHAPE, "the object has no 'value'")
    raw = obj["value"]
    if isinstance(raw, bool):
        value, is_bool = (1.0 if raw else 0.0), True
    elif isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            number = math.inf if raw > 0 else -math.inf
        value, is_bool = _check_number(number, str(raw), limits), False
    elif raw is None or isinstance(raw, str):
        raise _reject(RejectReason.NOT_A_NUMBER, f"'value' is a JSON {_json_type(raw)}")
    else:
        raise _reject(RejectReason.WRONG_SHAPE, f"'value' is a JSON {_json_type(raw)}")
    ts = _parse_ts(obj.get("ts"), now, limits)
    msg_id = _parse_id(obj.get("id"))
    return Reading(value, is_bool=is_bool, ts=ts, msg_id=msg_id)


def _parse_id(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or _MSG_ID.fullmatch(raw) is None:
        raise _reject(
            RejectReason.WRONG_SHAPE, f"'id' must look like <boot>-<seq>, not {raw!r:.60}"
        )
    return raw


def _parse_ts(raw: object, now: datetime | None, limits: TelemetryLimits) -> datetime | None:
    if raw is None:
        return None
    current = now if now is not None else datetime.now(UTC)
    latest = current + limits.max_future_skew
    earliest = current - limits.max_age
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        # Compare the number itself first (exact for any int) so absurd values are classified
        # instead of overflowing the datetime conversion.
        if raw > latest.timestamp():
            raise _reject(RejectReason.TS_IN_FUTURE, f"'ts' {raw!r:.40} is after {latest}")
        if raw < earliest.timestamp():
            raise _reject(RejectReason.TS_TOO_OLD, f"'ts' {raw!r:.40} is before {earliest}")
    elif not isinstance(raw, str):
        raise _reject(RejectReason.WRONG_SHAPE, f"'ts' is a JSON {_json_type(raw)}")
    try:
        ts = parse_timestamp(raw)
    except (ValueError, OverflowError) as exc:
        raise _reject(RejectReason.WRONG_SHAPE, f"'ts': {exc}") from None
    if ts > latest:
        raise _reject(RejectReason.TS_IN_FUTURE, f"'ts' {format_timestamp(ts)} is after {latest}")
    if ts < earliest:
        raise _reject(RejectReason.TS_TOO_OLD, f"'ts' {format_timestamp(ts)} is before {earliest}")
    return ts
