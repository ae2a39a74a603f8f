"""The payloads Hearth sends over MQTT, as pydantic models, and their bytes encoding.

Errors (the root is :class:`hearth.common.errors.HearthError`)::

    HearthError
    └── MessageError(HearthError, ValueError)   a payload that does not parse
        ├── PayloadError                         bytes that are not a valid message
        └── TelemetryRejected                    telemetry ingest refuses [hearth.common.telemetry]

Every model forbids unknown keys, refuses NaN and infinities, and is immutable. Encode with
``msg.to_bytes()`` (compact JSON, UTF-8) and decode with ``Model.from_bytes(payload)``, which
raises :class:`PayloadError` for anything that is not a valid message.

Timestamps (:data:`Timestamp`) are timezone-aware UTC datetimes with millisecond precision.
They are read from RFC 3339 strings (``2026-11-21T10:00:00Z``, ``...T11:00:00.250+01:00``)
or epoch seconds with a fraction (``1795255200.25``), rounded to the nearest millisecond, and
written as RFC 3339 UTC strings with milliseconds (``2026-11-21T10:00:00.250Z``).

Telemetry has its own forgiving parser with rejection reasons: :mod:`hearth.common.telemetry`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from hearth.common.clock import utc_now
from hearth.common.errors import HearthError
from hearth.common.topics import SLUG_PATTERN

__all__ = [
    "MSG_ID_PATTERN",
    "USER_ID_PATTERN",
    "Ack",
    "AckOutcome",
    "Command",
    "CommandOutcome",
    "Message",
    "MessageError",
    "PayloadError",
    "PresenceState",
    "RegistryAction",
    "RegistryEvent",
    "RegistryKind",
    "ServiceStatus",
    "StatePayload",
    "Status",
    "StatusReason",
    "TelemetryPayload",
    "Timestamp",
    "UserMark",
    "format_timestamp",
    "parse_state",
    "parse_status",
    "parse_timestamp",
    "service_status_payload",
]

MSG_ID_PATTERN = r"[A-Za-z0-9]{1,32}-[0-9]{1,20}"
"""A telemetry message id ``<boot>-<seq>``: boot id, a dash, a sequence number."""
USER_ID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
"""A user id: a UUID in canonical lowercase text."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
# datetime covers years 1..9999; keep epoch numbers well inside so arithmetic cannot overflow.
_MIN_EPOCH_S = -62_135_596_800.0  # 0001-01-01T00:00:00Z
_MAX_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z


class MessageError(HearthError, ValueError):
    """A payload does not parse as the message it should be."""

    status = 400
    code = "invalid"
    title = "Invalid message"


class PayloadError(MessageError):
    """Bytes that are not a valid message of the expected type."""


# --------------------------------------------------------------------------- timestamps


def _from_epoch_seconds(seconds: float) -> datetime:
    if not math.isfinite(seconds) or not _MIN_EPOCH_S <= seconds <= _MAX_EPOCH_S:
        raise ValueError(f"epoch seconds {seconds!r} outside years 1..9999")
    return _EPOCH + timedelta(milliseconds=round(seconds * 1000))


def _round_ms(value: datetime) -> datetime:
    micro = value.microsecond
    rounded = value.replace(microsecond=micro // 1000 * 1000)
    if micro % 1000 >= 500:
        rounded += timedelta(milliseconds=1)
    return rounded


def _from_rfc3339(text: str) -> datetime:
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with a UTC offset")
    frac, zulu, sign, off_h, off_m = m.groups()[6:]
    if zulu and text[10] == "T" and text[-1] == "Z" and (frac is None or len(frac) in (3, 6)):
        # The common case (a device's ``...T10:00:00.250Z``), already validated by the
        # pattern: the C parser builds the same value several times faster.
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass  # e.g. day 31 of a 30-day month: the path below says why
        else:
            return parsed if parsed.microsecond % 1000 == 0 else _round_ms(parsed)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((frac or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"{text!r} has an invalid UTC offset")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if sign == "-":
            offset = -offset
    local = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    try:
        return _round_ms(local - offset)
    except OverflowError as exc:
        raise ValueError(f"{text!r} is outside years 1..9999 in UTC") from exc


def parse_timestamp(value: object) -> datetime:
    """Read a timestamp: RFC 3339 text, epoch seconds (int or float), or an aware datetime.

    Returns an aware UTC datetime rounded to the millisecond. Raises ``ValueError`` (plain,
    so pydantic can wrap it) for anything else: naive datetimes, booleans, NaN, bad text.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: a timezone is required")
        try:
            return _round_ms(value.astimezone(UTC))
        except OverflowError as exc:
            raise ValueError("datetime outside years 1..9999 in UTC") from exc
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return _from_epoch_seconds(float(value))
    if isinstance(value, str):
        return _from_rfc3339(value)
    raise ValueError(f"a {type(value).__name__} is not a timestamp")


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-11-21T10:00:00.250Z``."""
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


Timestamp = Annotated[
    datetime,
    PlainValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "epoch seconds"},
            ]
        }
    ),
]
"""An aware UTC datetime with millisecond precision (see :func:`parse_timestamp`)."""


def _check_finite(value: JsonValue) -> JsonValue:
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and infinities are not JSON")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


FiniteJson = Annotated[JsonValue, AfterValidator(_check_finite)]
"""Any JSON value without NaN or infinities."""
Slug = Annotated[str, Field(pattern=f"^{SLUG_PATTERN}$")]
UserId = Annotated[str, Field(pattern=f"^{USER_ID_PATTERN}$")]
MsgId = Annotated[str, Field(pattern=f"^{MSG_ID_PATTERN}$")]


# --------------------------------------------------------------------------- base


class Message(BaseModel):
    """Base of every MQTT payload model: immutable, unknown keys refused.

    Numbers and booleans are strict (no ``"1"`` for ``1``, no ``1`` for ``true``); UUIDs,
    enums and timestamps are read from their JSON text.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    _keep_null: ClassVar[frozenset[str]] = frozenset()
    """Optional fields written as ``null`` when unset; other unset optional fields are left out."""

    def to_bytes(self) -> bytes:
        """Compact JSON in UTF-8; optional fields that are ``None`` are left out."""
        omit = {
            name
            for name, field in type(self).model_fields.items()
            if field.default is None and name not in self._keep_null and getattr(self, name) is None
        }
        return self.model_dump_json(exclude=omit).encode("utf-8")

    @classmethod
    def from_bytes(cls, payload: bytes | bytearray | str) -> Self:
        """Decode a payload, raising :class:`PayloadError` when it is not a valid message."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            raise PayloadError(_describe(cls.__name__, exc)) from None
        except (ValueError, RecursionError, OverflowError) as exc:  # defence in depth
            raise PayloadError(f"invalid {cls.__name__}: {exc}") from None


def _describe(name: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        problems.append(f"{where}: {err['msg']}")
    return f"invalid {name}: " + "; ".join(problems)


# --------------------------------------------------------------------------- device payloads


class TelemetryPayload(Message):
    """The JSON form of telemetry: ``{"value": 21.5, "ts": ..., "id": "<boot>-<seq>"}``.

    For publishers (simulator, Pi agent, tests). Ingest reads telemetry with
    :func:`hearth.common.telemetry.parse_telemetry`, which also accepts bare numbers.
    """

    value: StrictBool | StrictFloat | StrictInt
    ts: Timestamp | None = None
    id: MsgId | None = None


class StatePayload(Message):
    """The state a device reports for one property: ``{"value": ..., "ts": ...}``, retained.

    Devices may also publish a bare JSON value (``true``, ``21``, ``"on"``) or plain text
    (``on``): see :func:`parse_state`. A JSON object always is this wrapped form, so an
    object-valued state is sent as ``{"value": {...}}``.
    """

    value: FiniteJson
    ts: Timestamp | None = None


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def parse_state(payload: bytes | bytearray | str) -> StatePayload:
    """Read a state payload: ``{"value": ..., "ts": ...}``, a bare JSON value, or plain text.

    Plain text that is not JSON (``on``) becomes a string value, stripped of surrounding
    whitespace. Empty payloads (a cleared retained message) raise :class:`PayloadError`.
    """
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
    except UnicodeDecodeError:
        raise PayloadError("invalid StatePayload: not UTF-8") from None
    stripped = text.strip()
    if not stripped:
        raise PayloadError("invalid StatePayload: empty")
    if stripped.startswith("{"):
        return StatePayload.from_bytes(stripped)
    try:
        value = json.loads(stripped, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        value = stripped
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"invalid StatePayload: {exc}") from None
    try:
        return StatePayload(value=value)
    except ValidationError as exc:
        raise PayloadError(_describe("StatePayload", exc)) from None


class Command(Message):
    """A command to a device, on ``hearth/{home}/{device}/command/{property}`` at QoS 1.

    The device drops it, acking ``expired``, when ``expires_at`` has passed.
    """

    _keep_null: ClassVar[frozenset[str]] = frozenset({"expires_at"})  # firmware sees null

    id: uuid.UUID
    value: FiniteJson
    issued_at: Timestamp
    expires_at: Timestamp | None = None
    by: UserId

    def is_expired(self, now: datetime | None = None) -> bool:
        """Whether ``expires_at`` has passed at ``now`` (default: the current time)."""
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at


class AckOutcome(StrEnum):
    """What a device says it did with a command."""

    DONE = "done"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CommandOutcome(StrEnum):
    """What REST and Socket.IO report for a command: a device's outcome, or ``timeout``."""

    DONE = "done"
    REJECTED = "rejected"
    EXPIRED = "expired"
    TIMEOUT = "timeout"
    """No ack came in time (the platform's verdict; devices never send it)."""


class Ack(Message):
    """A device's answer to a command, on ``hearth/{home}/{device}/ack`` at QoS 1.

    ``value`` is the resulting state of the property, ``reason`` says why it was rejected.
    """

    id: uuid.UUID
    outcome: AckOutcome
    reason: Annotated[str, Field(max_length=200)] | None = None
    value: FiniteJson = None


class PresenceState(StrEnum):
    """Online or offline: of a device (:class:`Status`) or a service (:class:`ServiceStatus`)."""

    ONLINE = "online"
    OFFLINE = "offline"


class StatusReason(StrEnum):
    """Why a presence changed."""

    CONNECTED = "connected"
    """Birth message: the device (or service) connected."""
    WILL = "will"
    """The broker published the will: the connection was lost."""
    DISCONNECT = "disconnect"
    """The device (or service) said goodbye before a clean disconnect."""
    SILENT = "silent"
    """Published by the registry: nothing heard for three intervals."""


_ONLINE_REASONS = frozenset({StatusReason.CONNECTED})


class _Presence(Message):
    state: PresenceState
    reason: StatusReason | None = None
    ts: Timestamp | None = None

    @model_validator(mode="after")
    def _reason_fits_state(self) -> Self:
        if self.reason is not None:
            online = self.state is PresenceState.ONLINE
            if online != (self.reason in _ONLINE_REASONS):
                raise ValueError(f"reason {self.reason.value!r} does not fit {self.state.value!r}")
        return self


class Status(_Presence):
    """A device's presence on ``hearth/{home}/{device}/status``, retained.

    ``{"state": "online", "reason": "connected", "ts": ...}`` is the birth;
    ``{"state": "offline", "reason": "will"}`` the will. ``reason`` and ``ts`` may be left
    out (a will is fixed at connect time, so it rarely knows a useful ``ts``); plain
    ``online``/``offline`` text is read by :func:`parse_status`.
    """


def parse_status(payload: bytes | bytearray | str) -> Status:
    """Read a device status: the JSON form or plain ``online``/``offline`` text."""
    try:
        text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
    except UnicodeDecodeError:
        raise PayloadError("invalid Status: not UTF-8") from None
    word = text.strip().strip('"').lower()
    if word in (PresenceState.ONLINE.value, PresenceState.OFFLINE.value):
        return Status(state=PresenceState(word))
    return Status.from_bytes(text)


class ServiceStatus(_Presence):
    """A service replica's presence on ``hearth-sys/services/{service}/{replica}``, retained.

    Same shape as :class:`Status` (``silent`` is not used for services).
    """


def service_status_payload(reason: StatusReason) -> bytes:
    """The retained status a service replica publishes, as bytes.

    ``connected`` is the birth (online, with ``ts``); ``will`` is the will set at connect
    (offline, no ``ts``: a will cannot know when it will be sent); ``disconnect`` is a
    clean stop (offline, with ``ts``).
    """
    if reason is StatusReason.SILENT:
        raise ValueError("services never publish silent")
    state = PresenceState.ONLINE if reason is StatusReason.CONNECTED else PresenceState.OFFLINE
    ts = None if reason is StatusReason.WILL else utc_now()
    return ServiceStatus(state=state, reason=reason, ts=ts).to_bytes()


# --------------------------------------------------------------------------- system bus


class UserMark(Message):
    """A user's revocation mark on ``hearth-sys/auth/users/{user id}``, retained.

    Tokens of the user whose ``iat`` (in ms) is before ``not_before`` are revoked; a
    ``disabled`` user's tokens are all refused.
    """

    not_before: Annotated[StrictInt, Field(ge=0)]
    disabled: StrictBool = False


class RegistryKind(StrEnum):
    """What changed in a home."""

    MEMBERSHIP = "membership"
    DEVICE = "device"
    HOME = "home"
    PRESENCE = "presence"
    """A device came online or went offline (changes nobody's rights)."""


class RegistryAction(StrEnum):
    """How it changed."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class RegistryEvent(Message):
    """A change in a home, on ``hearth-sys/registry/homes/{home}`` at QoS 1, not retained.

    Receivers drop cached answers about ``home`` (and withdraw sockets from rooms they may no
    longer read) unless the event :attr:`changes_rights` is false (presence). ``device`` is
    set exactly for device and presence events, ``user`` exactly for membership events,
    ``presence`` (the device's new status) exactly for presence events.
    """

    kind: RegistryKind
    home: Slug
    action: RegistryAction
    device: Slug | None = None
    user: UserId | None = None
    presence: Status | None = None
    ts: Timestamp

    @property
    def changes_rights(self) -> bool:
        """Whether the event may change who may do what (every kind but presence)."""
        return self.kind is not RegistryKind.PRESENCE

    @model_validator(mode="after")
    def _subject_fits_kind(self) -> Self:
        device_kinds = (RegistryKind.DEVICE, RegistryKind.PRESENCE)
        if (self.device is not None) != (self.kind in device_kinds):
            raise ValueError("device is required for device and presence events and only for them")
        if (self.user is not None) != (self.kind is RegistryKind.MEMBERSHIP):
            raise ValueError("user is required for membership events and only for them")
        if (self.presence is not None) != (self.kind is RegistryKind.PRESENCE):
            raise ValueError("presence is required for presence events and only for them")
        return self
